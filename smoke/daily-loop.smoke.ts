/**
 * `make smoke-daily-loop`: the daily loop from a cold state, on a real guest,
 * asserting on structured results: prepare → create (warm) → repro (red) →
 * a wrong fix → reset (warm, back to the baseline) → the right fix → green.
 * Standby VMs are on (the default), so creates and resets may take one over.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { resolvePaths } from "../src/config/paths.js";
import { Pyro } from "../src/sdk/pyro.js";
import { listStandbys, stopStandbys } from "../src/workspaces/standby.js";
import { copyEnvironmentInto, waitFor } from "../test/helpers.js";

const home = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-smoke-"));
afterAll(async () => {
  // prepare and warm creates leave a standby VM waiting (the default): stop it with its home.
  const paths = resolvePaths({ PYRO_HOME: home });
  stopStandbys(paths);
  await waitFor(() => listStandbys(paths).length === 0, 30_000, "the standby VM to stop");
  fs.rmSync(home, { recursive: true, force: true });
});

it("prepare, then repro → fix → reset → retry", async () => {
  // Cold state: the environment is built (shared cache), nothing is prepared.
  copyEnvironmentInto(home, "debian:12");
  const pyro = new Pyro({ home });
  const doctorBefore = await pyro.doctor({ skipBoot: true, environment: "debian:12" });
  expect(doctorBefore.daily_loop?.readiness).toBe("cold");

  const prepared = await pyro.prepare({ environment: "debian:12" });
  expect(prepared).toMatchObject({ status: "prepared", proof: { boot_kind: "warm" } });
  expect((await pyro.prepare({ environment: "debian:12" })).status).toBe("already_warm");
  expect(
    (await pyro.doctor({ skipBoot: true, environment: "debian:12" })).daily_loop?.readiness,
  ).toBe("warm");

  const repo = fs.mkdtempSync(path.join(home, "repo-"));
  fs.writeFileSync(path.join(repo, "calc.py"), "def add(a, b):\n    return a - b\n");
  fs.writeFileSync(
    path.join(repo, "test_calc.py"),
    "from calc import add\nassert add(2, 3) == 5, add(2, 3)\nprint('green')\n",
  );
  const ws = await pyro.workspaces.create({ seedPath: repo, name: "smoke" });
  try {
    expect(ws).toMatchObject({ state: "started", boot_kind: "warm", origin_kind: "directory" });

    const red = await pyro.workspaces.exec("smoke", "python3 test_calc.py");
    expect(red.exit_code).toBe(1);
    expect(red.stderr).toContain("AssertionError: -1");

    const wrong =
      "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a * b\n";
    await pyro.workspaces.applyPatch("smoke", wrong);
    await pyro.workspaces.exec("smoke", "echo scratch > /tmp/state");
    const stillRed = await pyro.workspaces.exec("smoke", "python3 test_calc.py");
    expect(stillRed.exit_code).toBe(1);
    expect(stillRed.stderr).toContain("AssertionError: 6");

    const reset = await pyro.workspaces.reset("smoke");
    expect(reset).toMatchObject({
      id: ws.id,
      name: "smoke",
      boot_kind: "warm",
      restored_from: "baseline",
      reset_count: 1,
    });
    expect((await pyro.workspaces.diff("smoke")).changed).toBe(false);
    expect(pyro.workspaces.logs("smoke").entries).toEqual([]);
    expect(
      (await pyro.workspaces.exec("smoke", "test -e /tmp/state && echo kept || echo fresh")).stdout,
    ).toBe("fresh\n");

    const right =
      "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n";
    const applied = await pyro.workspaces.applyPatch("smoke", right);
    expect(applied.files).toEqual([{ path: "calc.py", status: "modified" }]);
    const green = await pyro.workspaces.exec("smoke", "python3 test_calc.py");
    expect(green).toMatchObject({ exit_code: 0, stdout: "green\n" });
    const diff = await pyro.workspaces.diff("smoke");
    expect(diff.entries.filter((e) => !e.path.includes("__pycache__")).map((e) => e.path)).toEqual([
      "calc.py",
    ]);
  } finally {
    await pyro.workspaces.delete(ws.id);
  }
});
