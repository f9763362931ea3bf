/**
 * The disk tools on a workspace whose disk is built here (an ext4 image as
 * the environment's rootfs blob, a qcow2 overlay over it), no VM: paths,
 * runtime-only exclusions, symlinks, redaction, the stopped-only rule, the
 * lock, the pinned qcow2 chain, and export.
 */
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolvePaths } from "../config/paths.js";
import { EnvironmentCache } from "../environments/cache.js";
import { ErrorCodes, type PyroError } from "../errors.js";
import { REDACTED } from "../secrets/redaction.js";
import { WorkspaceStore, type WorkspaceRecord } from "../records/store.js";
import { Ext4Image } from "../util/ext4-image.js";
import { DISK_FILE, WorkspaceContext } from "./context.js";
import { diskPath, exportDisk, listDisk, readDisk, runtimeOnlyRoot } from "./disk.js";
import { storeSecrets } from "./secrets.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-disk-test-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const paths = resolvePaths({ PYRO_HOME: path.join(dir, "home") });
const ctx = new WorkspaceContext(paths, new EnvironmentCache(paths), () => {}, 4);
const SECRET = "s3cret-token-value";
const BLOB = "a".repeat(64);

/** An ext4 image of `tree` as a qcow2 blob in the cache. */
function blobOf(tree: Record<string, string | { link: string }>, name: string): string {
  const root = path.join(dir, `${name}-tree`);
  for (const [file, content] of Object.entries(tree)) {
    const target = path.join(root, file);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (typeof content === "string") fs.writeFileSync(target, content);
    else fs.symlinkSync(content.link, target);
  }
  const raw = path.join(dir, `${name}.raw`);
  execFileSync("mke2fs", ["-q", "-F", "-t", "ext4", "-d", root, raw, "32M"]);
  const blob = path.join(dir, `${name}.qcow2`);
  execFileSync("qemu-img", ["convert", "-O", "qcow2", raw, blob]);
  return blob;
}

function record(
  id: string,
  state: WorkspaceRecord["state"],
  name: string | null = null,
): WorkspaceRecord {
  const now = new Date().toISOString();
  return {
    id,
    name,
    labels: {},
    environment: "debian:12",
    vcpu_count: 1,
    mem_mib: 1024,
    state,
    failure_reason: null,
    created_at: now,
    last_activity_at: now,
    expires_at: null,
    network_policy: "off",
    seed: { origin_kind: "empty", origin_ref: null, files: 0, bytes: 0 },
    supervisor_pid: state === "started" ? process.pid : null,
    qemu_pid: null,
    busy_pid: null,
    boot_ms: null,
    accel: null,
    rootfs_blob: BLOB,
    baseline_ready: true,
    secrets: ["TOKEN"],
  };
}

/** A workspace whose disk is an overlay over the blob; `backing` is what its header names. */
function workspace(id: string, state: WorkspaceRecord["state"], backing: string): string {
  new WorkspaceStore(paths).create(record(id, state));
  storeSecrets(ctx, id, { TOKEN: SECRET });
  execFileSync("qemu-img", [
    "create",
    "-q",
    "-f",
    "qcow2",
    "-b",
    backing,
    "-F",
    "qcow2",
    ctx.store.file(id, DISK_FILE),
  ]);
  return id;
}

async function failure(promise: Promise<unknown>): Promise<PyroError> {
  try {
    await promise;
  } catch (error) {
    return error as PyroError;
  }
  throw new Error("did not fail");
}

const WS = "ws_000000000001";
let evil: string;

beforeAll(() => {
  const blob = blobOf(
    {
      "workspace/notes.txt": "written before stop\n",
      "workspace/src/app.py": "print('hi')\n",
      "workspace/leak.txt": `token=${SECRET}\n`,
      "workspace/out": { link: "/etc" },
      "etc/passwd": "root:x:0:0::/root:/bin/sh\n",
      "run/pyro-secrets/TOKEN": SECRET,
      "opt/pyro/agent.js": "// pyro's own\n",
      "tmp/scratch": "tmpfs at run time\n",
    },
    "env",
  );
  fs.mkdirSync(paths.blobs, { recursive: true });
  fs.copyFileSync(blob, path.join(paths.blobs, BLOB));
  // Another image, which an overlay's header may name as its backing file: never read.
  evil = blobOf({ "workspace/notes.txt": "not the environment\n" }, "evil");
  workspace(WS, "stopped", path.join(paths.blobs, BLOB));
});

describe("disk paths", () => {
  it("takes guest paths, relative ones under /workspace", () => {
    expect(diskPath(".")).toBe("/workspace");
    expect(diskPath("src/")).toBe("/workspace/src");
    expect(diskPath("/workspace/src")).toBe("/workspace/src");
    expect(diskPath("/etc/../etc/passwd")).toBe("/etc/passwd");
    expect(diskPath("/../../..")).toBe("/");
    expect(diskPath("../etc")).toBe("/etc");
    expect(() => diskPath("a\0b")).toThrow(/NUL/);
    expect(runtimeOnlyRoot("/run/pyro-secrets/TOKEN")).toBe("/run");
    expect(runtimeOnlyRoot("/opt/pyro")).toBe("/opt/pyro");
    expect(runtimeOnlyRoot("/opt/pyrotechnics")).toBeUndefined();
    expect(runtimeOnlyRoot("/runner")).toBeUndefined();
  });
});

describe("disk tools on a stopped workspace", () => {
  it("lists /workspace by default, recursively when asked, with symlinks as links", async () => {
    const top = await listDisk(ctx, WS);
    expect(top).toMatchObject({
      workspace_id: WS,
      path: "/workspace",
      truncated: false,
      excluded: [],
    });
    expect(top.entries.map((e) => e.path)).toEqual(["leak.txt", "notes.txt", "out", "src"]);
    expect(top.entries.find((e) => e.path === "out")).toMatchObject({
      type: "symlink",
      link_target: "/etc",
    });
    const all = await listDisk(ctx, WS, ".", { recursive: true });
    expect(all.entries.map((e) => e.path)).toContain("src/app.py");
    expect(all.entries.find((e) => e.path === "notes.txt")).toMatchObject({
      type: "file",
      size: 20,
      mode: 0o644,
    });
  });

  it("leaves runtime-only paths out of listings and refuses them by name", async () => {
    const root = await listDisk(ctx, WS, "/", { recursive: true });
    const paths = root.entries.map((e) => e.path);
    expect(paths).toContain("etc/passwd");
    expect(paths.filter((p) => /^(run|tmp|opt\/pyro)(\/|$)/.test(p))).toEqual([]);
    expect(root.excluded).toEqual(["/opt/pyro", "/run", "/tmp"]);
    for (const p of ["/run/pyro-secrets/TOKEN", "/opt/pyro/agent.js", "/tmp", "../run"]) {
      const error = await failure(readDisk(ctx, WS, p));
      expect(error.code, p).toBe(ErrorCodes.PathNotAllowed);
    }
  });

  it("reads a file (relative or absolute), bounded, with secrets redacted", async () => {
    const read = await readDisk(ctx, WS, "notes.txt");
    expect(read).toMatchObject({
      path: "/workspace/notes.txt",
      content: "written before stop\n",
      encoding: "utf-8",
      size: 20,
      bytes_read: 20,
      truncated: false,
    });
    const cut = await readDisk(ctx, WS, "/workspace/notes.txt", { maxBytes: 7 });
    expect(cut).toMatchObject({ content: "written", bytes_read: 7, truncated: true });
    expect((await readDisk(ctx, WS, "leak.txt")).content).toBe(`token=${REDACTED}\n`);
    expect((await readDisk(ctx, WS, "/etc/passwd")).content).toMatch(/^root:/);
  });

  it("names what it cannot read: symlinks, missing paths, directories, too large a bound", async () => {
    const link = await failure(readDisk(ctx, WS, "out/passwd"));
    expect(link.code).toBe(ErrorCodes.PathNotAllowed);
    expect(link.message).toBe("/workspace/out is a symlink to /etc");
    expect(link.hint).toMatch(/give the path it points to \(\/etc\/passwd\)$/);
    expect((await failure(readDisk(ctx, WS, "nope"))).code).toBe(ErrorCodes.FileNotFound);
    expect((await failure(readDisk(ctx, WS, "notes.txt/x"))).code).toBe(ErrorCodes.FileNotFound);
    expect((await failure(readDisk(ctx, WS, "src"))).code).toBe(ErrorCodes.UsageError);
    expect((await failure(listDisk(ctx, WS, "notes.txt"))).code).toBe(ErrorCodes.UsageError);
    const big = await failure(readDisk(ctx, WS, "notes.txt", { maxBytes: 2 * 1024 * 1024 }));
    expect(big.code).toBe(ErrorCodes.UsageError);
  });

  it("reads the environment's blob under the overlay, whatever the overlay's header names", async () => {
    const id = workspace("ws_000000000002", "stopped", evil);
    expect((await readDisk(ctx, id, "notes.txt")).content).toBe("written before stop\n");
  });

  it("leaves nothing behind in pyro's temp area", async () => {
    await listDisk(ctx, WS);
    expect(fs.readdirSync(paths.tmp)).toEqual([]);
  });
});

describe("the stopped-only rule", () => {
  it("refuses a running workspace with a fix that stops it", async () => {
    const id = workspace("ws_000000000003", "started", path.join(paths.blobs, BLOB));
    const error = await failure(listDisk(ctx, id));
    expect(error.code).toBe(ErrorCodes.WorkspaceState);
    expect(error.message).toMatch(/is started: the disk tools read a stopped workspace's disk/);
    expect(error.fix).toEqual({ kind: "stop_workspace", workspace: id });
  });

  it("refuses a failed workspace whose disk a process still holds open for writing", async () => {
    const id = workspace("ws_000000000005", "failed", path.join(paths.blobs, BLOB));
    // qemu-io opens the image read-write and holds QEMU's image lock, as a leftover VM would.
    const holder = spawn("qemu-io", ["-f", "qcow2", ctx.store.file(id, DISK_FILE)], {
      stdio: ["pipe", "pipe", "ignore"],
    });
    try {
      await new Promise((r) => holder.stdout.once("data", r));
      const error = await failure(readDisk(ctx, id, "notes.txt"));
      expect(error.code).toBe(ErrorCodes.WorkspaceState);
      expect(error.message).toMatch(/still has a VM holding its disk open/);
    } finally {
      holder.kill("SIGKILL");
    }
    await new Promise((r) => holder.once("close", r));
    expect((await readDisk(ctx, id, "notes.txt")).content).toBe("written before stop\n");
  });

  it("decides under the workspace's lock: a start that holds it is seen", async () => {
    const id = workspace("ws_000000000004", "stopped", path.join(paths.blobs, BLOB));
    let release!: () => void;
    const held = ctx.store.locked(id, async () => {
      await new Promise<void>((resolve) => (release = resolve));
      const r = ctx.store.readRaw(id)!;
      ctx.store.write({ ...r, state: "starting", busy_pid: process.pid });
    });
    const listing = listDisk(ctx, id);
    await new Promise((r) => setTimeout(r, 300));
    release();
    await held;
    expect((await failure(listing)).code).toBe(ErrorCodes.WorkspaceState);
  });
});

describe("disk export", () => {
  it("writes the disk as raw ext4, owner-only, and never over an existing file", async () => {
    const output = path.join(dir, "out", "disk.ext4");
    const exported = await exportDisk(ctx, WS, output);
    expect(exported).toMatchObject({
      workspace_id: WS,
      output,
      format: "raw",
      filesystem: "ext4",
      journal_replayed: false,
    });
    expect(exported.bytes).toBe(32 * 1024 * 1024);
    expect(fs.statSync(output).mode & 0o777).toBe(0o600);
    const disk = new Ext4Image(output, dir);
    const notes = await disk.lookup(["workspace", "notes.txt"]);
    expect((await disk.read(notes!.entry, 100)).toString()).toBe("written before stop\n");
    expect(fs.readdirSync(path.dirname(output))).toEqual(["disk.ext4"]);
    const again = await failure(exportDisk(ctx, WS, output));
    expect(again.code).toBe(ErrorCodes.Conflict);
  });
});
