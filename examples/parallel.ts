/**
 * Parallel, isolated workspaces of one project: try three fixes at once,
 * keep the ones whose test passes, compare their diffs; fork a workspace
 * mid-way to branch an experiment off its current state.
 *
 *   node --import tsx examples/parallel.ts
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Pyro } from "pyro-mcp";

const project = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-example-"));
fs.writeFileSync(path.join(project, "calc.sh"), "add() { echo $(( $1 - $2 )); }\n");
fs.writeFileSync(path.join(project, "test.sh"), '. ./calc.sh\n[ "$(add 2 3)" = 5 ]\n');
execFileSync("git", ["init", "-q"], { cwd: project });

const candidates = {
  plus: "add() { echo $(( $1 + $2 )); }",
  times: "add() { echo $(( $1 * $2 )); }",
  expr: "add() { expr $1 + $2; }",
};

const pyro = new Pyro();
const label = { example: `parallel-${process.pid}` };
const made: string[] = [];
try {
  // One workspace per candidate fix, all created and tested at once.
  const results = await Promise.all(
    Object.entries(candidates).map(async ([name, fix]) => {
      const ws = await pyro.workspaces.create({
        seedPath: project,
        labels: { ...label, fix: name },
      });
      made.push(ws.id);
      await pyro.workspaces.writeFile(ws.id, "calc.sh", `${fix}\n`);
      const test = await pyro.workspaces.exec(ws.id, "sh test.sh");
      return { name, id: ws.id, passed: test.exit_code === 0 };
    }),
  );
  for (const r of results) console.log(`${r.name}: ${r.passed ? "passes" : "fails"} (${r.id})`);

  for (const r of results.filter((x) => x.passed)) {
    const diff = await pyro.workspaces.diff(r.id);
    console.log(`--- ${r.name}\n${diff.patch}`);
  }

  // Branch off a passing workspace as it is now (disk, and memory when running).
  const base = results.find((r) => r.passed)!;
  const fork = await pyro.workspaces.fork(base.id, { name: `parallel-fork-${process.pid}` });
  made.push(fork.id);
  await pyro.workspaces.exec(fork.id, "echo 'sub() { echo $(( $1 - $2 )); }' >> calc.sh");
  const forkDiff = await pyro.workspaces.diff(fork.id);
  const baseDiff = await pyro.workspaces.diff(base.id);
  console.log(
    `fork ${fork.id}: ${forkDiff.patch.split("\n").length} diff lines; its source still ${baseDiff.patch.split("\n").length}`,
  );
} finally {
  for (const id of made) await pyro.workspaces.delete(id).catch(() => {});
  fs.rmSync(project, { recursive: true, force: true });
}
