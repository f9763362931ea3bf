/**
 * Shells and secrets on real guests, through the CLI a user runs: a Python
 * REPL, a full-screen program read plain, Ctrl-C, shells ending with the VM;
 * secrets materialized in the guest, redacted from every output, found in no
 * file of the state tree but their own store, back after reset and in a fork.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, runCliJson, sharedPaths } from "./helpers.js";

const created: string[] = [];
afterAll(async () => {
  for (const id of created) await runCli(["workspace", "delete", id]);
});

async function createWorkspace(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { code, json, stderr } = await runCliJson<{ id: string }>(
    ["workspace", "create", "debian:12", ...args],
    env,
  );
  expect(code, stderr).toBe(0);
  created.push(json.id);
  return json.id;
}

interface Read {
  text: string;
  next_cursor: number;
  state: string;
  screen: string | null;
  exit_code: number | null;
}

async function openShell(ws: string, args: string[] = []): Promise<string> {
  const { code, json, stderr } = await runCliJson<{ shell_id: string }>([
    "workspace",
    "shell",
    "open",
    ws,
    ...args,
  ]);
  expect(code, stderr).toBe(0);
  return json.shell_id;
}

async function write(ws: string, shell: string, input: string, newline = true): Promise<void> {
  const args = ["workspace", "shell", "write", ws, shell, "--input", input];
  const { code, stderr } = await runCli(newline ? args : [...args, "--no-append-newline"]);
  expect(code, stderr).toBe(0);
}

async function read(ws: string, shell: string, cursor: number, extra: string[] = []) {
  const { code, json, stderr } = await runCliJson<Read>([
    "workspace",
    "shell",
    "read",
    ws,
    shell,
    "--cursor",
    String(cursor),
    ...extra,
  ]);
  expect(code, stderr).toBe(0);
  return json;
}

/** Plain reads from `cursor`, waiting for idle, until `pattern` shows (programs start slowly under TCG). */
async function readUntil(ws: string, shell: string, cursor: number, pattern: RegExp) {
  let text = "";
  let next = cursor;
  for (const deadline = Date.now() + 90_000; Date.now() < deadline;) {
    const got = await read(ws, shell, next, ["--plain", "--wait-for-idle-ms", "300"]);
    text += got.text;
    next = got.next_cursor;
    if (pattern.test(text)) return { text, next, last: got };
  }
  throw new Error(`never saw ${pattern} in ${JSON.stringify(text)}`);
}

describe("shells", () => {
  let ws: string;
  beforeAll(async () => {
    ws = await createWorkspace(["--name", `shells-${process.pid}`]);
  });

  it("drives a Python REPL and reads it as a person would see it", async () => {
    const shell = await openShell(ws);
    const prompt = await readUntil(ws, shell, 0, /[#$]\s*$/);
    expect(prompt.text).toContain("/workspace");
    await write(ws, shell, "python3 -q");
    const repl = await readUntil(ws, shell, prompt.next, />>>\s*$/);
    await write(ws, shell, "print(6*7)");
    const answer = await readUntil(ws, shell, repl.next, /^42$/m);
    expect(answer.text).not.toContain("\u001b");
    expect(answer.text).not.toContain("\r");
    await write(ws, shell, "exit()");
  });

  it("renders a full-screen program, and stops a foreground job with INT", async () => {
    const shell = await openShell(ws, ["--rows", "12"]);
    const start = await readUntil(ws, shell, 0, /[#$]\s*$/);
    await write(ws, shell, "seq 1 500 | less");
    const screen = await readUntil(ws, shell, start.next, /^11$/m);
    expect(screen.last.screen).toBe("alternate");
    expect(screen.last.text.split("\n")[0]).toBe("1");
    expect(screen.last.text).not.toMatch(/^12$/m); // 11 lines of text and less's prompt
    await write(ws, shell, "q", false);
    const back = await readUntil(ws, shell, screen.next, /[#$]\s*$/);

    await write(ws, shell, "sleep 100; echo after-$((40+2))");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const signal = await runCliJson<{ process_group: number; pid: number }>([
      "workspace",
      "shell",
      "signal",
      ws,
      shell,
      "--signal",
      "INT",
    ]);
    expect(signal.code, signal.stderr).toBe(0);
    await write(ws, shell, "echo alive-$((6*7))");
    const after = await readUntil(ws, shell, back.next, /alive-42/);
    expect(after.text).not.toContain("after-42");
  });

  it("names the fix for an unknown shell and a shell closed twice, and ends shells with the VM", async () => {
    const shell = await openShell(ws);
    const unknown = await runCli(["workspace", "shell", "read", ws, "sh_00000000"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(shell); // lists the open shells
    expect((await runCli(["workspace", "shell", "close", ws, shell])).code).toBe(0);
    const again = await runCli(["workspace", "shell", "close", ws, shell]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/was closed/);

    const live = await openShell(ws);
    const summary = await runCliJson<{ shells: { shell_id: string; state: string }[] }>([
      "workspace",
      "summary",
      ws,
    ]);
    expect(summary.json.shells.map((s) => [s.shell_id, s.state])).toEqual(
      expect.arrayContaining([
        [shell, "closed"],
        [live, "running"],
      ]),
    );
    expect((await runCli(["workspace", "stop", ws])).code).toBe(0);
    expect((await runCli(["workspace", "start", ws])).code).toBe(0);
    const ended = await runCli(["workspace", "shell", "read", ws, live]);
    expect(ended.code).toBe(1);
    expect(ended.stderr).toMatch(/ended: the workspace stopped/);
  });
});

describe("secrets", () => {
  const value = `s3cr3t-${randomBytes(12).toString("hex")}`;
  const fileValue = `file-${randomBytes(12).toString("hex")}`;
  let ws: string;
  let secretFile: string;

  beforeAll(async () => {
    secretFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pyro-secret-")), "token");
    fs.writeFileSync(secretFile, `${fileValue}\n`, { mode: 0o600 });
    // A bare NAME takes the value from pyro's environment: it never shows in a process list.
    ws = await createWorkspace(
      ["--secret", "API_TOKEN", "--secret-file", `FILE_TOKEN=${secretFile}`],
      { API_TOKEN: value },
    );
  });

  afterAll(() => fs.rmSync(path.dirname(secretFile), { recursive: true, force: true }));

  it("refuses bad secrets before anything is created", async () => {
    const before = (await runCliJson<unknown[]>(["workspace", "list"])).json.length;
    const cases: [string[], RegExp][] = [
      [["--secret", "1BAD=value1"], /not a valid name/],
      [["--secret-file", "GONE=/nonexistent/file"], /does not exist/],
      [["--secret-file", `BIG=${bigFile()}`], /more than the 64 KiB/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(["workspace", "create", "debian:12", ...args]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    expect((await runCliJson<unknown[]>(["workspace", "list"])).json.length).toBe(before);
  });

  it("keeps values out of every output and every file of the state tree", async () => {
    const exec = await runCli([
      "workspace",
      "exec",
      ws,
      "--secret-env",
      "API_TOKEN=TOKEN",
      "--",
      'echo "env=$TOKEN"; cat /run/pyro-secrets/FILE_TOKEN; stat -c "%a %U" /run/pyro-secrets/API_TOKEN',
    ]);
    expect(exec.code, exec.stderr).toBe(0);
    expect(exec.stdout.toString()).toBe("env=[REDACTED]\n[REDACTED]\n400 root\n");

    const shell = await openShell(ws, ["--secret-env", "FILE_TOKEN"]);
    await write(
      ws,
      shell,
      'echo "shell=$FILE_TOKEN"; cat /run/pyro-secrets/API_TOKEN; echo; echo done-$((1+2))',
    );
    const shown = await readUntil(ws, shell, 0, /done-3/);
    expect(shown.text).toContain("shell=[REDACTED]");
    const raw = await read(ws, shell, 0);
    for (const text of [shown.text, raw.text]) {
      expect(text).not.toContain(value);
      expect(text).not.toContain(fileValue);
    }

    const service = await runCli([
      "workspace",
      "service",
      "start",
      ws,
      "talker",
      "--secret-env",
      "API_TOKEN",
      "--",
      'echo "service=$API_TOKEN"; sleep 600',
    ]);
    expect(service.code, service.stderr).toBe(0);
    const logs = await runCli(["workspace", "service", "logs", ws, "talker"]);
    expect(logs.stdout.toString()).toBe("service=[REDACTED]\n");

    const journal = await runCliJson<{ entries: { stdout: string }[] }>(["workspace", "logs", ws]);
    expect(JSON.stringify(journal.json)).not.toContain(value);
    const status = await runCliJson<{ secrets: string[] }>(["workspace", "status", ws]);
    expect(status.json.secrets).toEqual(["API_TOKEN", "FILE_TOKEN"]);
    expect(JSON.stringify(status.json)).not.toContain(value);

    // Everything pyro keeps: only the workspace's own secret store may hold the values.
    const { data, cache } = sharedPaths();
    const store = path.join(data, "workspaces", ws, "secrets.json");
    expect(fs.statSync(store).mode & 0o777).toBe(0o600);
    expect(filesContaining([data, cache], [value, fileValue])).toEqual([store]);
  });

  it("redacts a value read back from a file, in diffs and summaries", async () => {
    const exec = await runCli([
      "workspace",
      "exec",
      ws,
      "--",
      "cp /run/pyro-secrets/API_TOKEN /workspace/leak.txt",
    ]);
    expect(exec.code, exec.stderr).toBe(0);
    const file = await runCliJson<{ content: string }>([
      "workspace",
      "file",
      "read",
      ws,
      "leak.txt",
    ]);
    expect(file.json.content).toBe("[REDACTED]");
    const diff = await runCli(["workspace", "diff", ws]);
    expect(diff.stdout.toString()).toContain("+[REDACTED]");
    expect(diff.stdout.toString()).not.toContain(value);
    const summary = await runCli(["workspace", "summary", ws, "--json"]);
    expect(summary.stdout.toString()).not.toContain(value);
  });

  it("materializes them again after reset, and a fork keeps them", async () => {
    expect((await runCli(["workspace", "reset", ws])).code).toBe(0);
    const afterReset = await runCli([
      "workspace",
      "exec",
      ws,
      "--",
      "ls /run/pyro-secrets; wc -c < /run/pyro-secrets/API_TOKEN; cat /workspace/leak.txt 2>&1 || true",
    ]);
    // Both secrets are back, the whole value; /workspace is the baseline again.
    expect(afterReset.stdout.toString()).toMatch(
      new RegExp(`^API_TOKEN\nFILE_TOKEN\n${value.length}\n.*No such file`),
    );
    const fork = await runCliJson<{ id: string; secrets: string[] }>(["workspace", "fork", ws]);
    expect(fork.code, fork.stderr).toBe(0);
    created.push(fork.json.id);
    expect(fork.json.secrets).toEqual(["API_TOKEN", "FILE_TOKEN"]);
    const inFork = await runCli([
      "workspace",
      "exec",
      fork.json.id,
      "--secret-env",
      "API_TOKEN",
      "--",
      "test ${#API_TOKEN} -eq " + value.length + ' && echo length-ok; echo "$API_TOKEN"',
    ]);
    expect(inFork.stdout.toString()).toBe("length-ok\n[REDACTED]\n");
  });
});

function bigFile(): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pyro-secret-big-")), "big");
  fs.writeFileSync(file, "x".repeat(64 * 1024 + 1));
  return file;
}

/** Every regular file under `roots` that contains one of `needles` (grep, so GBs of images go fast). */
function filesContaining(roots: string[], needles: string[]): string[] {
  const args = ["-rlF", "-D", "skip", ...needles.flatMap((n) => ["-e", n]), ...roots];
  try {
    return execFileSync("grep", args, { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 })
      .split("\n")
      .filter(Boolean)
      .sort();
  } catch (error) {
    if ((error as { status?: number }).status === 1) return []; // grep: no match
    throw error;
  }
}
