/**
 * The runnable examples in examples/ run as a user runs them (`node --import
 * tsx examples/X.ts`, `pyro-mcp` resolved to this package's build, `pyro`
 * on PATH) against real guests, and say what they promise.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CLI, ROOT } from "./helpers.js";

// `pyro` on PATH for the MCP client example, as `make install` would put it.
const bin = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-examples-bin-"));
fs.symlinkSync(CLI, path.join(bin, "pyro"));
afterAll(() => fs.rmSync(bin, { recursive: true, force: true }));

function runExample(file: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join("examples", file)], {
      cwd: ROOT,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
  });
}

describe("examples/", () => {
  it("run-once.ts boots a VM, runs one command and prints its output", async () => {
    const { code, out } = await runExample("run-once.ts");
    expect(code, out).toBe(0);
    expect(out).toMatch(/^exit 0 after \d+ ms\nLinux \S+\nDebian GNU\/Linux 12/m);
  });

  it("repro-fix.ts reproduces, fixes, diffs and resets", async () => {
    const { code, out } = await runExample("repro-fix.ts");
    expect(code, out).toBe(0);
    expect(out).toContain("repro: exit 1: FAIL: add 2 3 = -1");
    expect(out).toContain("fixed: exit 0: PASS");
    expect(out).toContain("+add() { echo $(( $1 + $2 )); }");
    expect(out).toContain("after reset: exit 1 (the bug is back)");
  });

  it("parallel.ts tries fixes in parallel workspaces and forks one", async () => {
    const { code, out } = await runExample("parallel.ts");
    expect(code, out).toBe(0);
    expect(out).toMatch(/^plus: passes/m);
    expect(out).toMatch(/^times: fails/m);
    expect(out).toMatch(/^expr: passes/m);
    expect(out).toMatch(/^fork ws_\w+: \d+ diff lines; its source still \d+/m);
  });

  it("mcp-client.ts works a workspace through pyro mcp serve with the official client", async () => {
    const { code, out } = await runExample("mcp-client.ts");
    expect(code, out).toBe(0);
    expect(out).toMatch(/^repro-fix mode: .*workspace_create/m);
    expect(out).toContain("exit 0: hello from Linux");
    expect(out).toContain("summary: 1 commands, 0 failed");
  });

  it("function-calling.ts exports definitions and runs scripted tool calls", async () => {
    const { code, out } = await runExample("function-calling.ts");
    expect(code, out).toBe(0);
    expect(out).toMatch(/^request: \d+ tools \(workspace_create, /m);
    expect(out).toMatch(/^tool_result t1: created ws_\w+/m);
    expect(out).toMatch(/^tool_result t2: exit 0, kernel \S+/m);
  });
});
