import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolvePaths } from "../config/paths.js";
import { PyroError } from "../errors.js";
import {
  liveView,
  newWorkspaceId,
  validateLabel,
  validateName,
  WorkspaceStore,
  type WorkspaceRecord,
} from "./store.js";

const LIVE_PID = process.pid;
const DEAD_PID = 2 ** 22 + 12345; // above the largest pid_max Linux allows

function record(overrides: Partial<WorkspaceRecord> = {}): WorkspaceRecord {
  return {
    id: newWorkspaceId(),
    name: null,
    labels: {},
    environment: "debian-12",
    vcpu_count: 1,
    mem_mib: 512,
    state: "stopped",
    failure_reason: null,
    created_at: "2024-01-01T00:00:00.000Z",
    last_activity_at: "2024-01-01T00:00:00.000Z",
    expires_at: null,
    network_policy: "off",
    seed: { origin_kind: "empty", origin_ref: null, files: 0, bytes: 0 },
    supervisor_pid: null,
    qemu_pid: null,
    busy_pid: null,
    boot_ms: null,
    accel: null,
    rootfs_blob: "0".repeat(64),
    baseline_ready: true,
    ...overrides,
  };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PyroError);
    return (error as PyroError).code;
  }
  return undefined;
}

let home: string;
let store: WorkspaceStore;
beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-store-test-"));
  store = new WorkspaceStore(resolvePaths({ PYRO_HOME: home }));
});
afterEach(() => {
  fs.rmSync(home, { recursive: true, force: true });
});

describe("ids and names", () => {
  it("makes ids of the form ws_ + 12 hex digits", () => {
    const ids = new Set(Array.from({ length: 50 }, () => newWorkspaceId()));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^ws_[0-9a-f]{12}$/);
  });

  it.each(["a", "my-box", "A.b_c-9", "9lives", "x".repeat(63), "ws_notanid", "ws_0123456789abc"])(
    "accepts the name %j",
    (name) => {
      expect(validateName(name)).toBe(name);
    },
  );

  it.each([
    ["an id", "ws_0123456789ab"],
    ["a fresh id", newWorkspaceId()],
    ["empty", ""],
    ["too long", "x".repeat(64)],
    ["a leading dash", "-x"],
    ["a leading dot", ".x"],
    ["a space", "my box"],
    ["a slash", "a/b"],
    ["a path escape", "../x"],
    ["unicode", "café"],
  ])("rejects %s", (_what, name) => {
    expect(codeOf(() => validateName(name))).toBe("usage_error");
  });

  it("validates labels", () => {
    expect(() => validateLabel("team/owner", "me")).not.toThrow();
    expect(() => validateLabel("k", "v".repeat(256))).not.toThrow();
    expect(codeOf(() => validateLabel("k", "v".repeat(257)))).toBe("usage_error");
    expect(codeOf(() => validateLabel("", "v"))).toBe("usage_error");
    expect(codeOf(() => validateLabel("bad key", "v"))).toBe("usage_error");
  });
});

describe("WorkspaceStore", () => {
  it("lives under the data directory of PYRO_HOME", () => {
    expect(store.root).toBe(path.join(home, "workspaces"));
    expect(store.file("ws_0123456789ab", "workspace.json")).toBe(
      path.join(home, "workspaces", "ws_0123456789ab", "workspace.json"),
    );
  });

  it("has no workspaces before the first create", () => {
    expect(store.ids()).toEqual([]);
    expect(store.all()).toEqual([]);
    expect(store.read("ws_0123456789ab")).toBeUndefined();
  });

  it("creates and reads a record, owner-only", () => {
    const r = record({ name: "box", labels: { team: "a" } });
    store.create(r);
    expect(store.read(r.id)).toEqual(r);
    expect(store.readRaw(r.id)).toEqual(r);
    expect(store.ids()).toEqual([r.id]);
    expect(store.all()).toEqual([r]);
    expect(fs.statSync(store.dir(r.id)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(store.file(r.id, "workspace.json")).mode & 0o777).toBe(0o600);
    // no temp files left behind by the atomic write
    expect(fs.readdirSync(store.dir(r.id))).toEqual(["workspace.json"]);
  });

  it("refuses to create a workspace whose directory exists", () => {
    const r = record();
    store.create(r);
    expect(() => store.create(r)).toThrow();
  });

  it("ignores directories that are not workspace ids and unreadable records", () => {
    const r = record();
    store.create(r);
    fs.mkdirSync(path.join(store.root, "not-an-id"));
    fs.mkdirSync(path.join(store.root, "ws_ffffffffffff"));
    fs.writeFileSync(path.join(store.root, "ws_ffffffffffff", "workspace.json"), "{torn");
    expect(store.ids().sort()).toEqual([r.id, "ws_ffffffffffff"].sort());
    expect(store.read("ws_ffffffffffff")).toBeUndefined();
    expect(store.all()).toEqual([r]);
  });

  it("update persists the change (mutating the draft)", async () => {
    const r = record({ name: "box" });
    store.create(r);
    const returned = await store.update(r.id, (draft) => {
      draft.state = "stopped";
      draft.labels.added = "yes";
      draft.exec_sequence = 7;
    });
    expect(returned.labels).toEqual({ added: "yes" });
    expect(returned.exec_sequence).toBe(7);
    const again = store.read(r.id)!;
    expect(again.labels).toEqual({ added: "yes" });
    expect(again.exec_sequence).toBe(7);
    expect(new WorkspaceStore(resolvePaths({ PYRO_HOME: home })).read(r.id)).toEqual(again);
    // the lock is released
    expect(fs.existsSync(store.file(r.id, "lock"))).toBe(false);
  });

  it("update persists the change (returning a new record)", async () => {
    const r = record();
    store.create(r);
    await store.update(r.id, (current) => ({ ...current, name: "renamed", mem_mib: 2048 }));
    expect(store.readRaw(r.id)).toMatchObject({ name: "renamed", mem_mib: 2048 });
    expect(store.resolve("renamed").id).toBe(r.id);
  });

  it("update does not touch the record when the change throws", async () => {
    const r = record({ name: "box" });
    store.create(r);
    await expect(
      store.update(r.id, (draft) => {
        draft.name = "half";
        throw new Error("no");
      }),
    ).rejects.toThrow("no");
    expect(store.readRaw(r.id)).toEqual(r);
    expect(fs.existsSync(store.file(r.id, "lock"))).toBe(false);
  });

  it("update of a removed workspace fails with workspace_not_found", async () => {
    const r = record();
    store.create(r);
    fs.rmSync(store.file(r.id, "workspace.json"));
    const error = await store
      .update(r.id, () => {})
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(PyroError);
    expect((error as PyroError).code).toBe("workspace_not_found");
  });

  it("update returns the live view", async () => {
    const r = record({ state: "started", supervisor_pid: DEAD_PID });
    store.create(r);
    const returned = await store.update(r.id, () => {});
    expect(returned.state).toBe("failed");
    expect(store.readRaw(r.id)?.state).toBe("started");
  });

  it("resolves by id and by name", () => {
    const a = record({ name: "alpha" });
    const b = record({ name: "beta" });
    const c = record();
    for (const r of [a, b, c]) store.create(r);
    expect(store.resolve(a.id)).toEqual(a);
    expect(store.resolve("alpha")).toEqual(a);
    expect(store.resolve("beta")).toEqual(b);
    expect(store.resolve(c.id)).toEqual(c);
  });

  it("resolve of an unknown name fails with workspace_not_found listing the known ids", () => {
    const a = record({ name: "alpha" });
    const b = record();
    store.create(a);
    store.create(b);
    let caught: unknown;
    try {
      store.resolve("gamma");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(PyroError);
    const error = caught as PyroError;
    expect(error.code).toBe("workspace_not_found");
    expect(error.message).toContain("gamma");
    const known = error.fix?.kind === "find_workspace" ? error.fix.known : [];
    expect([...known].sort()).toEqual([`${a.id} (alpha)`, b.id].sort());
  });

  it("resolve of an unknown id fails with workspace_not_found", () => {
    expect(codeOf(() => store.resolve("ws_0123456789ab"))).toBe("workspace_not_found");
  });

  it("resolve with no workspaces at all hints at creating one", () => {
    let caught: PyroError | undefined;
    try {
      store.resolve("anything");
    } catch (error) {
      caught = error as PyroError;
    }
    expect(caught?.code).toBe("workspace_not_found");
    // The fix has no workspace to offer: each face words it as "create one".
    expect(caught?.fix).toEqual({ kind: "find_workspace", known: [] });
  });

  it("removes a workspace", () => {
    const r = record({ name: "gone" });
    store.create(r);
    store.remove(r.id);
    expect(fs.existsSync(store.dir(r.id))).toBe(false);
    expect(store.ids()).toEqual([]);
    expect(codeOf(() => store.resolve("gone"))).toBe("workspace_not_found");
    store.remove(r.id); // idempotent
  });

  it("read applies the live view", () => {
    const r = record({ state: "started", supervisor_pid: DEAD_PID });
    store.create(r);
    expect(store.read(r.id)?.state).toBe("failed");
    expect(store.readRaw(r.id)?.state).toBe("started");
    expect(store.all()[0]?.state).toBe("failed");
  });
});

describe("liveView", () => {
  it("treats the test pids as live and dead", () => {
    expect(() => process.kill(LIVE_PID, 0)).not.toThrow();
    expect(() => process.kill(DEAD_PID, 0)).toThrow();
  });

  it("marks started with a dead supervisor as failed", () => {
    const view = liveView(record({ state: "started", supervisor_pid: DEAD_PID }));
    expect(view.state).toBe("failed");
    expect(view.failure_reason).toMatch(/supervisor/);
  });

  it("marks started without a supervisor pid as failed", () => {
    expect(liveView(record({ state: "started", supervisor_pid: null })).state).toBe("failed");
  });

  it("keeps started with a live supervisor", () => {
    const r = record({ state: "started", supervisor_pid: LIVE_PID });
    expect(liveView(r)).toEqual(r);
  });

  it("keeps an existing failure reason", () => {
    const view = liveView(
      record({ state: "started", supervisor_pid: DEAD_PID, failure_reason: "oom" }),
    );
    expect(view).toMatchObject({ state: "failed", failure_reason: "oom" });
  });

  it("marks a started create interrupted before the baseline as failed", () => {
    const view = liveView(
      record({
        state: "started",
        supervisor_pid: LIVE_PID,
        busy_pid: DEAD_PID,
        baseline_ready: false,
      }),
    );
    expect(view.state).toBe("failed");
    expect(view.failure_reason).toMatch(/create was interrupted/);
  });

  it("keeps a started create whose creator is still seeding", () => {
    const r = record({
      state: "started",
      supervisor_pid: LIVE_PID,
      busy_pid: LIVE_PID,
      baseline_ready: false,
    });
    expect(liveView(r)).toEqual(r);
  });

  it("marks starting with a dead busy pid as failed", () => {
    const view = liveView(record({ state: "starting", busy_pid: DEAD_PID }));
    expect(view.state).toBe("failed");
    expect(view.failure_reason).toMatch(/interrupted/);
  });

  it("keeps starting with a live busy pid", () => {
    const r = record({ state: "starting", busy_pid: LIVE_PID });
    expect(liveView(r)).toEqual(r);
  });

  it("keeps starting while the supervisor is alive even if the busy process died", () => {
    const r = record({ state: "starting", busy_pid: DEAD_PID, supervisor_pid: LIVE_PID });
    expect(liveView(r)).toEqual(r);
  });

  it.each(["stopped", "failed"] as const)("leaves %s alone whatever the pids", (state) => {
    const r = record({ state, supervisor_pid: DEAD_PID, busy_pid: DEAD_PID });
    expect(liveView(r)).toEqual(r);
  });

  it("does not modify its input", () => {
    const r = record({ state: "started", supervisor_pid: DEAD_PID });
    const copy = structuredClone(r);
    liveView(r);
    expect(r).toEqual(copy);
  });
});
