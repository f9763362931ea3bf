/**
 * `make smoke-daily-loop`: the daily loop from a cold state on a real guest,
 * along the contract's recommended path (doctor → prepare → connect host →
 * work, reset, retry). doctor and prepare run through the CLI; the work is a
 * chat host's: the official MCP client drives `pyro mcp serve --mode
 * repro-fix --project-path REPO` over stdio. Asserts on structured results:
 * create (warm) → repro (red) → a wrong fix → reset (warm, back to the
 * baseline, a fresh /tmp) → the right fix → green → diff and summary.
 * Standby VMs are on (the default), so creates and resets may take one over.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { afterAll, expect, it } from "vitest";
import { resolvePaths } from "../src/config/paths.js";
import { listStandbys, stopStandbys } from "../src/supervisor/standby-pool.js";
import { CLI, copyEnvironmentInto, runCli, runCliJson, waitFor } from "../test/helpers.js";

const home = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-smoke-"));
const env = { PYRO_HOME: home, PYRO_STANDBY: "1" };
afterAll(async () => {
  // prepare and warm creates leave a standby VM waiting (the default): stop it with its home.
  const paths = resolvePaths({ PYRO_HOME: home });
  stopStandbys(paths);
  await waitFor(() => listStandbys(paths).length === 0, 30_000, "the standby VM to stop");
  fs.rmSync(home, { recursive: true, force: true });
});

type Result = { error: boolean; text: string; data: Record<string, unknown> };

it("doctor → prepare → MCP: repro → wrong fix → reset → right fix → green", async () => {
  // Cold state: the environment is built (shared cache), nothing is prepared.
  copyEnvironmentInto(home, "debian:12");
  const readiness = async () => {
    const doctor = await runCliJson<{ daily_loop: { readiness: string } }>(
      ["doctor", "--skip-boot", "--environment", "debian:12"],
      env,
    );
    // Cold is a state, not a failure: doctor exits 0 either way.
    expect(doctor.code, doctor.stderr).toBe(0);
    return doctor.json.daily_loop.readiness;
  };
  expect(await readiness()).toBe("cold");
  const prepared = await runCliJson(["prepare", "debian:12"], env);
  expect(prepared.code, prepared.stderr).toBe(0);
  expect(prepared.json).toMatchObject({ status: "prepared", proof: { boot_kind: "warm" } });
  expect((await runCliJson(["prepare", "debian:12"], env)).json.status).toBe("already_warm");
  expect(await readiness()).toBe("warm");

  const repo = fs.mkdtempSync(path.join(home, "repo-"));
  fs.writeFileSync(path.join(repo, "calc.py"), "def add(a, b):\n    return a - b\n");
  fs.writeFileSync(
    path.join(repo, "test_calc.py"),
    "from calc import add\nassert add(2, 3) == 5, add(2, 3)\nprint('green')\n",
  );

  const client = new Client({ name: "pyro-smoke", version: "1.0.0" });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [CLI, "mcp", "serve", "--mode", "repro-fix", "--project-path", repo],
      env: { ...(process.env as Record<string, string>), ...env },
      stderr: "ignore",
    }),
  );
  const call = async (name: string, args: Record<string, unknown>): Promise<Result> => {
    const result = await client.callTool({ name, arguments: args }, { timeout: 300_000 });
    const content = result.content as { text?: string }[];
    return {
      error: result.isError === true,
      text: content.map((c) => c.text ?? "").join("\n"),
      data: (result.structuredContent ?? {}) as Record<string, unknown>,
    };
  };
  const ok = async (name: string, args: Record<string, unknown>) => {
    const result = await call(name, args);
    expect(result.error, `${name}: ${result.text}`).toBe(false);
    return result.data;
  };

  let id: string | undefined;
  try {
    const ws = await ok("workspace_create", { name: "smoke" });
    id = ws.id as string;
    expect(ws).toMatchObject({ state: "started", boot_kind: "warm", origin_kind: "directory" });
    const run = (command: string) => ok("workspace_exec", { workspace_id: id, command });

    const red = await run("python3 test_calc.py");
    expect(red).toMatchObject({ status: "completed", exit_code: 1 });
    expect(red.stderr).toContain("AssertionError: -1");

    const wrong =
      "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a * b\n";
    await ok("workspace_patch_apply", { workspace_id: id, patch: wrong });
    await run("echo scratch > /tmp/state");
    const stillRed = await run("python3 test_calc.py");
    expect(stillRed).toMatchObject({ exit_code: 1 });
    expect(stillRed.stderr).toContain("AssertionError: 6");

    const reset = await ok("workspace_reset", { workspace_id: id });
    expect(reset).toMatchObject({
      id,
      name: "smoke",
      boot_kind: "warm",
      restored_from: "baseline",
      reset_count: 1,
    });
    expect(await ok("workspace_diff", { workspace_id: id })).toMatchObject({ changed: false });
    expect((await run("test -e /tmp/state && echo kept || echo fresh")).stdout).toBe("fresh\n");

    const right =
      "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n";
    const applied = await ok("workspace_patch_apply", { workspace_id: id, patch: right });
    expect(applied.files).toEqual([expect.objectContaining({ path: "calc.py" })]);
    expect(await run("python3 test_calc.py")).toMatchObject({ exit_code: 0, stdout: "green\n" });

    const diff = await ok("workspace_diff", { workspace_id: id });
    expect(diff.changed).toBe(true);
    expect(diff.patch).toContain("+    return a + b");
    const summary = await ok("workspace_summary", { workspace_id: id });
    expect(JSON.stringify(summary)).toContain("python3 test_calc.py");
  } finally {
    await client.close();
    if (id) await runCli(["workspace", "delete", id], env);
  }
});
