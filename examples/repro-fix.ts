/**
 * The repro-fix loop through the SDK: seed a workspace from a checkout,
 * reproduce a failing test, fix it with a patch, prove the fix, look at the
 * diff against the baseline, reset to try again, and clean up.
 *
 *   node --import tsx examples/repro-fix.ts [CHECKOUT]
 *
 * Without CHECKOUT it makes a tiny project with a failing test in a temp dir.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Pyro } from "pyro-mcp";

/** A git checkout whose test fails: add() subtracts. */
function tinyProject(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-example-"));
  fs.writeFileSync(path.join(dir, "calc.sh"), "add() { echo $(( $1 - $2 )); }\n");
  fs.writeFileSync(
    path.join(dir, "test.sh"),
    '. ./calc.sh\n[ "$(add 2 3)" = 5 ] && echo PASS || { echo "FAIL: add 2 3 = $(add 2 3)"; exit 1; }\n',
  );
  const git = (...args: string[]) => execFileSync("git", args, { cwd: dir, stdio: "ignore" });
  git("init", "-q");
  git("add", ".");
  git("-c", "user.name=example", "-c", "user.email=example@localhost", "commit", "-qm", "calc");
  return dir;
}

const checkout = process.argv[2] ?? tinyProject();
const pyro = new Pyro();
const ws = await pyro.workspaces.create({ seedPath: checkout, name: `repro-fix-${process.pid}` });
try {
  console.log(`workspace ${ws.id}: seeded ${ws.seed_files} files from ${ws.origin_ref}`);

  const before = await pyro.workspaces.exec(ws.id, "sh test.sh");
  console.log(`repro: exit ${before.exit_code}: ${before.stdout.trim()}`);

  await pyro.workspaces.applyPatch(
    ws.id,
    [
      "--- a/calc.sh",
      "+++ b/calc.sh",
      "@@ -1 +1 @@",
      "-add() { echo $(( $1 - $2 )); }",
      "+add() { echo $(( $1 + $2 )); }",
      "",
    ].join("\n"),
  );
  const after = await pyro.workspaces.exec(ws.id, "sh test.sh");
  console.log(`fixed: exit ${after.exit_code}: ${after.stdout.trim()}`);

  const diff = await pyro.workspaces.diff(ws.id);
  console.log(`diff against the baseline (${diff.summary.modified} modified):\n${diff.patch}`);

  // Not happy with the fix? Reset gives a fresh machine at the baseline.
  await pyro.workspaces.reset(ws.id);
  const again = await pyro.workspaces.exec(ws.id, "sh test.sh");
  console.log(`after reset: exit ${again.exit_code} (the bug is back)`);
} finally {
  await pyro.workspaces.delete(ws.id);
}
