/**
 * Persistent workspaces against real guests, through the CLI (as a user and
 * a script would) and the SDK: the repro-fix flow, isolation, concurrency,
 * path safety, and the failure cases of the contract.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Pyro } from "../src/sdk/pyro.js";
import type { Workspace, WorkspaceExecResult } from "../src/workspaces/payloads.js";
import {
  commitFiles,
  pidAlive,
  runCli,
  runCliJson,
  sharedPaths,
  spawnCli,
  tempHome,
  waitFor,
} from "./helpers.js";

const created: string[] = [];

// Each test cleans up after itself: at most 4 workspaces may run at once.
afterEach(async () => {
  for (const id of created.splice(0)) await runCli(["workspace", "delete", id]);
});

/** A small repo with a failing test, as an agent would be handed. */
function makeRepo(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-repo-"));
  commitFiles(dir, {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "test_calc.py":
      "import unittest\nfrom calc import add\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\nunittest.main()\n",
    ".gitignore": "secret.env\n",
    "secret.env": "TOKEN=do-not-seed\n",
  });
  fs.writeFileSync(path.join(dir, "NOTES.md"), "untracked but not ignored\n");
  return dir;
}

async function createWs(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Workspace> {
  const { code, json, stderr } = await runCliJson<Workspace>(["workspace", "create", ...args], env);
  if (code !== 0) throw new Error(`create failed: ${JSON.stringify(json)} ${stderr}`);
  created.push(json.id);
  return json;
}

const fix = `--- a/calc.py
+++ b/calc.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
`;

describe("workspaces through the CLI", () => {
  it("runs the repro-fix flow: seed, fail, read, patch, pass, diff, export, delete", async () => {
    const repo = makeRepo();
    const ws = await createWs(["--seed-path", repo, "--name", "repro", "--label", "task=calc"]);
    expect(ws).toMatchObject({
      state: "started",
      name: "repro",
      labels: { task: "calc" },
      origin_kind: "git",
    });
    expect(ws.origin_ref).toContain(repo);

    const files = await runCliJson<{ entries: { path: string }[] }>([
      "workspace",
      "file",
      "list",
      "repro",
    ]);
    expect(files.json.entries.map((e) => e.path).sort()).toEqual([
      ".gitignore",
      "NOTES.md",
      "calc.py",
      "test_calc.py",
    ]);

    const red = await runCliJson<WorkspaceExecResult>([
      "workspace",
      "exec",
      "repro",
      "--",
      "python3 test_calc.py",
    ]);
    expect(red.code).toBe(1);
    expect(red.json).toMatchObject({ exit_code: 1, sequence: 1, cwd: "/workspace" });
    expect(red.json.stderr).toContain("AssertionError: -1 != 5");

    const read = await runCli(["workspace", "file", "read", "repro", "calc.py", "--content-only"]);
    expect(read.stdout.toString()).toBe("def add(a, b):\n    return a - b\n");

    const patchFile = path.join(repo, "..", `${path.basename(repo)}.diff`);
    fs.writeFileSync(patchFile, fix);
    const applied = await runCliJson<{ files: { path: string; status: string }[] }>([
      "workspace",
      "patch",
      "apply",
      "repro",
      "--patch-file",
      patchFile,
    ]);
    expect(applied.json.files).toEqual([{ path: "calc.py", status: "modified" }]);

    const green = await runCli(["workspace", "exec", ws.id, "--", "python3", "test_calc.py"]);
    expect(green.code).toBe(0);
    expect(green.stderr).toMatch(/OK/);

    const diff = await runCliJson<{
      changed: boolean;
      patch: string;
      entries: { path: string; status: string }[];
    }>(["workspace", "diff", "repro"]);
    expect(diff.json.changed).toBe(true);
    expect(diff.json.entries.filter((e) => !e.path.startsWith("__pycache__"))).toEqual([
      { path: "calc.py", status: "modified", kind: "text" },
    ]);
    expect(diff.json.patch).toContain("--- a/calc.py\n+++ b/calc.py\n");
    expect(diff.json.patch).toContain("-    return a - b\n+    return a + b\n");

    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pyro-export-")), "calc.py");
    const exported = await runCliJson<{ kind: string }>([
      "workspace",
      "export",
      "repro",
      "calc.py",
      "--output",
      out,
    ]);
    expect(exported.json.kind).toBe("file");
    expect(fs.readFileSync(out, "utf8")).toBe("def add(a, b):\n    return a + b\n");

    const logs = await runCliJson<{
      entries: { sequence: number; command: string; exit_code: number }[];
    }>(["workspace", "logs", "repro"]);
    expect(logs.json.entries.map((e) => [e.sequence, e.exit_code])).toEqual([
      [1, 1],
      [2, 0],
    ]);

    const deleted = await runCliJson<{ deleted: boolean }>(["workspace", "delete", "repro"]);
    expect(deleted.json.deleted).toBe(true);
    expect(fs.existsSync(path.join(sharedPaths().data, "workspaces", ws.id))).toBe(false);
    const again = await runCli(["workspace", "delete", ws.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`error: no workspace "${ws.id}"`);
  });

  it("lists, updates, stops and starts on the same disk", async () => {
    const ws = await createWs(["debian:12-base", "--name", "lifecycle"]);
    await runCli(["workspace", "exec", "lifecycle", "--", "echo kept > /workspace/state.txt"]);
    const renamed = await runCliJson<Workspace>([
      "workspace",
      "update",
      "lifecycle",
      "--name",
      "lifecycle2",
      "--label",
      "a=1",
      "--label",
      "b=2",
    ]);
    expect(renamed.json).toMatchObject({ name: "lifecycle2", labels: { a: "1", b: "2" } });
    const cleared = await runCliJson<Workspace>([
      "workspace",
      "update",
      "lifecycle2",
      "--clear-label",
      "a",
    ]);
    expect(cleared.json.labels).toEqual({ b: "2" });

    const stopped = await runCliJson<Workspace>(["workspace", "stop", "lifecycle2"]);
    expect(stopped.json.state).toBe("stopped");
    const refused = await runCli(["workspace", "exec", "lifecycle2", "--", "true"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("is stopped");
    expect(refused.stderr).toContain("pyro workspace start lifecycle2");

    const started = await runCliJson<Workspace>(["workspace", "start", "lifecycle2"]);
    expect(started.json.state).toBe("started");
    const kept = await runCli(["workspace", "exec", ws.id, "--", "cat /workspace/state.txt"]);
    expect(kept.stdout.toString()).toBe("kept\n");

    const list = await runCliJson<{ workspaces: Workspace[] }>(["workspace", "list"]);
    expect(list.json.workspaces[0]!.id).toBe(ws.id); // most recent activity first
  });

  it("keeps two workspaces isolated and serves concurrent commands", async () => {
    const [a, b] = await Promise.all([
      createWs(["--name", "iso-a"]),
      createWs(["--name", "iso-b"]),
    ]);
    await runCli(["workspace", "exec", a.id, "--", "echo only-in-a > mark"]);
    const inB = await runCli(["workspace", "exec", b.id, "--", "cat mark"]);
    expect(inB.code).toBe(1);
    // Two CLIs running in one workspace at the same time.
    const [slow, fast] = await Promise.all([
      runCliJson<WorkspaceExecResult>(["workspace", "exec", a.id, "--", "sleep 3; echo slow"]),
      runCliJson<WorkspaceExecResult>(["workspace", "exec", a.id, "--", "echo fast"]),
    ]);
    expect(slow.json.stdout).toBe("slow\n");
    expect(fast.json.stdout).toBe("fast\n");
    expect(new Set([slow.json.sequence, fast.json.sequence]).size).toBe(2);
  });

  it("refuses paths outside /workspace, including through symlinks", async () => {
    const ws = await createWs(["--name", "paths"]);
    await runCli([
      "workspace",
      "exec",
      ws.id,
      "--",
      "ln -s /etc etc-link && ln -s /etc/hostname host-link && mkdir sub",
    ]);
    for (const bad of ["../etc/passwd", "/etc/passwd", "etc-link/passwd", "host-link"]) {
      const read = await runCli(["workspace", "file", "read", ws.id, bad]);
      expect(read.code, bad).toBe(1);
      expect(read.stderr, bad).toMatch(/outside \/workspace|leads outside/);
    }
    const write = await runCli([
      "workspace",
      "file",
      "write",
      ws.id,
      "etc-link/evil",
      "--text",
      "x",
    ]);
    expect(write.code).toBe(1);
    const check = await runCli([
      "workspace",
      "exec",
      ws.id,
      "--",
      "test ! -e /etc/evil && echo clean",
    ]);
    expect(check.stdout.toString()).toBe("clean\n");
    const list = await runCli(["workspace", "file", "list", ws.id, "etc-link"]);
    expect(list.code).toBe(1);
    // A FIFO is refused, not read (opening it would block forever).
    await runCli(["workspace", "exec", ws.id, "--", "mkfifo pipe"]);
    const fifo = await runCli(["workspace", "file", "read", ws.id, "pipe"]);
    expect(fifo.code).toBe(1);
    expect(fifo.stderr).toContain("is not a regular file");
  });

  it("exports without ever writing outside the target, whatever the guest holds", async () => {
    const ws = await createWs(["--name", "export"]);
    await runCli([
      "workspace",
      "exec",
      ws.id,
      "--",
      "mkdir -p out/sub && echo fine > out/sub/ok.txt && ln -s /etc/passwd out/abs-link && ln -s ../../../../../tmp/pwned out/rel-link && ln -s sub/ok.txt out/good-link && mknod out/dev c 1 3 && mkfifo out/fifo",
    ]);
    const dest = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pyro-export-")), "out");
    const { code, json } = await runCliJson<{
      kind: string;
      skipped: { path: string; reason: string }[];
    }>(["workspace", "export", ws.id, "out", "--output", dest]);
    expect(code).toBe(0);
    expect(json.kind).toBe("directory");
    expect(fs.readFileSync(path.join(dest, "sub", "ok.txt"), "utf8")).toBe("fine\n");
    expect(fs.readlinkSync(path.join(dest, "good-link"))).toBe("sub/ok.txt");
    for (const gone of ["abs-link", "rel-link", "dev", "fifo"])
      expect(fs.existsSync(path.join(dest, gone)), gone).toBe(false);
    expect(json.skipped.map((s) => s.path.replace(/^\.\//, "")).sort()).toEqual([
      "abs-link",
      "dev",
      "fifo",
      "rel-link",
    ]);
    expect(fs.existsSync("/tmp/pwned")).toBe(false);
    // An existing output is never overwritten.
    const clash = await runCli(["workspace", "export", ws.id, "out", "--output", dest]);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain("already exists");
  });

  it("seeds from a hostile archive without writing outside /workspace", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-evil-"));
    const archive = path.join(dir, "evil.tgz");
    execFileSync("python3", [
      "-c",
      `
import io, tarfile
t = tarfile.open(${JSON.stringify(archive)}, "w:gz")
def add(name, data=b"x", **kw):
    info = tarfile.TarInfo(name); info.size = len(data)
    for k, v in kw.items(): setattr(info, k, v)
    t.addfile(info, io.BytesIO(data) if info.isreg() else None)
add("ok.txt", b"good\\n")
add("../escape.txt")
add("/tmp/abs.txt")
add("link", type=tarfile.SYMTYPE, linkname="/etc")
add("link/owned")
add("dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
t.close()
`,
    ]);
    const ws = await createWs(["--seed-path", archive]);
    expect(ws.origin_kind).toBe("archive");
    const check = await runCli([
      "workspace",
      "exec",
      ws.id,
      "--",
      "cat ok.txt; ls -A; test ! -e /escape.txt && test ! -e /tmp/abs.txt && test ! -e /etc/owned && echo safe",
    ]);
    expect(check.stdout.toString()).toBe("good\nok.txt\nsafe\n");
  });

  it("seeds by mode (tracked only, with .git when asked) and reports what it skipped", async () => {
    const repo = makeRepo();
    execFileSync("mkfifo", [path.join(repo, "a-fifo")]);
    const ws = await createWs(["--seed-path", repo, "--seed-mode", "tracked", "--include-git"]);
    expect(ws.origin_kind).toBe("git");
    const check = await runCli([
      "workspace",
      "exec",
      ws.id,
      "--",
      "ls -A | sort | tr '\\n' ' '; echo; git log --oneline | wc -l",
    ]);
    // Tracked only: not NOTES.md (untracked) nor secret.env (ignored); .git came along.
    expect(check.stdout.toString()).toBe(".git .gitignore calc.py test_calc.py \n1\n");
    const all = await runCliJson<Workspace & { seed_skipped: { path: string; reason: string }[] }>([
      "workspace",
      "create",
      "--seed-path",
      repo,
      "--seed-mode",
      "all",
    ]);
    created.push(all.json.id);
    expect(all.json.seed_skipped).toEqual([
      { path: "a-fifo", reason: "not a regular file (socket, FIFO or device)" },
    ]);
  });

  it("applies a patch all or nothing, naming the hunk that fails", async () => {
    const ws = await createWs(["--name", "patching"]);
    await runCli(["workspace", "file", "write", ws.id, "a.txt", "--text", "one\ntwo\nthree\n"]);
    await runCli(["workspace", "file", "write", ws.id, "b.txt", "--text", "alpha\nbeta\n"]);
    const bad = `--- a/a.txt
+++ b/a.txt
@@ -1,3 +1,3 @@
 one
-two
+TWO
 three
--- a/b.txt
+++ b/b.txt
@@ -1,2 +1,2 @@
 alpha
-gamma
+delta
`;
    const result = await runCli(["workspace", "patch", "apply", ws.id, "--patch", bad]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("hunk 1");
    expect(result.stderr).toContain("b.txt");
    expect(result.stderr).toContain("nothing was changed");
    const a = await runCli(["workspace", "file", "read", ws.id, "a.txt", "--content-only"]);
    expect(a.stdout.toString()).toBe("one\ntwo\nthree\n");
  });

  it("survives a killed CLI during create, exec and delete", async () => {
    const paths = sharedPaths();
    // Killed during create: whatever state it reached is readable and deletable.
    const child = spawnCli(["workspace", "create", "--name", "killed-create"]);
    await waitFor(
      () =>
        fs.existsSync(path.join(paths.data, "workspaces")) &&
        listNames(paths.data).includes("killed-create"),
      120_000,
      "the record",
    );
    child.kill("SIGKILL");
    await new Promise((r) => child.on("close", r));
    const status = await runCliJson<Workspace>(["workspace", "status", "killed-create"]);
    expect(["starting", "started", "failed"]).toContain(status.json.state);
    const del = await runCli(["workspace", "delete", "killed-create"]);
    expect(del.code).toBe(0);

    // Killed during exec: the workspace keeps working.
    const ws = await createWs(["--name", "killed-exec"]);
    const exec = spawnCli(["workspace", "exec", ws.id, "--", "sleep 30"]);
    await new Promise((r) => setTimeout(r, 2000));
    exec.kill("SIGKILL");
    const after = await runCli(["workspace", "exec", ws.id, "--", "echo alive"]);
    expect(after.stdout.toString()).toBe("alive\n");

    // Killed during delete: gone, or still there and deletable.
    const dying = spawnCli(["workspace", "delete", ws.id]);
    await new Promise((r) => setTimeout(r, 50));
    dying.kill("SIGKILL");
    await new Promise((r) => dying.on("close", r));
    const list = await runCliJson<{ workspaces: Workspace[] }>(["workspace", "list"]);
    if (list.json.workspaces.some((w) => w.id === ws.id))
      expect((await runCli(["workspace", "delete", ws.id])).code).toBe(0);
    expect(fs.existsSync(path.join(paths.data, "workspaces", ws.id))).toBe(false);
  });

  it("reports a VM killed underneath as failed, and starts it again with its disk", async () => {
    const ws = await createWs(["--name", "crashy"]);
    await runCli(["workspace", "exec", ws.id, "--", "echo precious > keep.txt && sync"]);
    const record = JSON.parse(
      fs.readFileSync(path.join(sharedPaths().data, "workspaces", ws.id, "workspace.json"), "utf8"),
    ) as { qemu_pid: number };
    process.kill(record.qemu_pid, "SIGKILL");
    let status: Workspace | undefined;
    await waitFor(
      () => {
        status = JSON.parse(
          execFileSync(process.execPath, [
            path.join("dist", "cli.js"),
            "workspace",
            "status",
            ws.id,
            "--json",
          ]).toString(),
        ) as Workspace;
        return status.state === "failed";
      },
      30_000,
      "the workspace to show failed",
    );
    expect(status!.failure_reason).toMatch(/VM died|no longer running/);
    const exec = await runCli(["workspace", "exec", ws.id, "--", "true"]);
    expect(exec.stderr).toContain("has failed");
    expect(exec.stderr).toContain(`pyro workspace start crashy`);
    const restarted = await runCliJson<Workspace>(["workspace", "start", "crashy"]);
    expect(restarted.json.state).toBe("started");
    const kept = await runCli(["workspace", "exec", ws.id, "--", "cat keep.txt"]);
    expect(kept.stdout.toString()).toBe("precious\n");
    expect(pidAlive(record.qemu_pid)).toBe(false);
  });

  it("enforces the running limit with the running workspaces named, and expires workspaces", async () => {
    const home = tempHome();
    const env = { PYRO_HOME: home, PYRO_MAX_RUNNING: "1" };
    // Share the built environment with the temp home through hard links (cheap).
    const shared = sharedPaths();
    fs.mkdirSync(path.join(home, "cache"), { recursive: true });
    fs.cpSync(path.join(shared.cache, "environments"), path.join(home, "cache", "environments"), {
      recursive: true,
    });
    fs.mkdirSync(path.join(home, "cache", "blobs", "sha256"), { recursive: true });
    for (const blob of fs.readdirSync(shared.blobs))
      fs.linkSync(path.join(shared.blobs, blob), path.join(home, "cache", "blobs", "sha256", blob));
    const first = await runCliJson<Workspace>(
      ["workspace", "create", "--name", "only-one", "--ttl-seconds", "20"],
      env,
    );
    expect(first.code).toBe(0);
    const second = await runCli(["workspace", "create", "--name", "too-many"], env);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain("limit 1");
    expect(second.stderr).toContain(`${first.json.id} (only-one)`);
    expect(first.json.expires_at).not.toBeNull();
    const supervisor = readSupervisorPid(home, first.json.id);
    expect(pidAlive(supervisor)).toBe(true);
    await waitFor(() => Date.now() > Date.parse(first.json.expires_at!), 60_000, "the expiry");
    const list = await runCliJson<{ workspaces: Workspace[] }>(["workspace", "list"], env);
    expect(list.json.workspaces).toEqual([]);
    await waitFor(() => !pidAlive(supervisor), 30_000, "the expired workspace's VM to go");
    fs.rmSync(home, { recursive: true, force: true });
  });
});

describe("workspaces through the SDK", () => {
  it("gives the same payloads as --json, and syncs host content in", async () => {
    const pyro = new Pyro();
    const ws = await pyro.workspaces.create({ name: "sdk-ws" });
    created.push(ws.id);
    const sdkExec = await pyro.workspaces.exec(ws.id, ["sh", "-c", "echo $0", "x y"]);
    expect(sdkExec.stdout).toBe("x y\n"); // an argv passes through the shell word for word
    const cliExec = await runCliJson<WorkspaceExecResult>([
      "workspace",
      "exec",
      ws.id,
      "--",
      "echo hi",
    ]);
    expect(Object.keys(cliExec.json).sort()).toEqual(Object.keys(sdkExec).sort());
    expect(cliExec.json.sequence).toBe(sdkExec.sequence + 1);

    const src = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-sync-"));
    fs.mkdirSync(path.join(src, "lib"));
    fs.writeFileSync(path.join(src, "lib", "x.txt"), "synced\n");
    const pushed = await pyro.workspaces.syncPush("sdk-ws", src, "vendor");
    expect(pushed).toMatchObject({ destination: "/workspace/vendor", origin_kind: "directory" });
    const read = await pyro.workspaces.readFile("sdk-ws", "vendor/lib/x.txt");
    expect(read).toMatchObject({
      content: "synced\n",
      encoding: "utf-8",
      size: 7,
      truncated: false,
    });
    await pyro.workspaces.writeFile("sdk-ws", "big.bin", Buffer.alloc(100_000, 0));
    const cut = await pyro.workspaces.readFile("sdk-ws", "big.bin", { maxBytes: 10 });
    expect(cut).toMatchObject({ truncated: true, size: 100_000, bytes_read: 10 });
    const diff = await pyro.workspaces.diff("sdk-ws");
    expect(diff.entries.map((e) => [e.path, e.status, e.kind])).toEqual([
      ["big.bin", "added", "binary"],
      ["vendor/lib/x.txt", "added", "text"],
    ]);
    const removed = await pyro.workspaces.delete("sdk-ws");
    expect(removed.deleted).toBe(true);
  });
});

function listNames(data: string): string[] {
  const root = path.join(data, "workspaces");
  return fs
    .readdirSync(root)
    .filter((n) => n.startsWith("ws_"))
    .map((n) => {
      try {
        return (
          JSON.parse(fs.readFileSync(path.join(root, n, "workspace.json"), "utf8")) as {
            name: string;
          }
        ).name;
      } catch {
        return "";
      }
    });
}

function readSupervisorPid(home: string, id: string): number {
  try {
    return (
      JSON.parse(fs.readFileSync(path.join(home, "workspaces", id, "workspace.json"), "utf8")) as {
        supervisor_pid: number;
      }
    ).supervisor_pid;
  } catch {
    return 0;
  }
}
