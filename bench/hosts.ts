/**
 * Chat-host onramps: what `pyro host` commands cost, end to end, in a
 * temporary HOME (nothing of the user's is touched). Reports medians;
 * asserts no timing thresholds.
 *
 *   node --import tsx bench/hosts.ts
 *
 * Environment: BENCH_RUNS (samples, default 5). The host CLIs are the pinned
 * ones of test/hosts/ (installed by test/hosts/install.sh when missing):
 *   1. `host print-config vscode` (no host CLI, nothing written);
 *   2. `host connect opencode` (pyro edits the config file);
 *   3. `host connect claude-code` (through `claude mcp remove` + `claude mcp add`);
 *   4. `host doctor` with all three registered: each registered command is
 *      started and answers initialize and tools/list (in parallel).
 *
 * Human table on stderr, JSON on stdout and in bench/results/hosts-latest.json.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cliOnce, isBuilt, log, parseRuns, repoRoot, report, runMain, stats } from "./lib.js";

async function main(): Promise<void> {
  if (!isBuilt()) throw new Error("dist/ is missing: run `npm run build` first");
  const runs = parseRuns(process.env.BENCH_RUNS, 5);
  log("installing the pinned host CLIs if missing (not timed)");
  const bin = execFileSync("sh", [path.join(repoRoot, "test", "hosts", "install.sh")], {
    encoding: "utf8",
  }).trim();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-bench-hosts-"));
  const saved = { HOME: process.env.HOME, PATH: process.env.PATH };
  process.env.HOME = home;
  process.env.PATH = `${bin}:${process.env.PATH}`;
  process.env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = "1";
  try {
    const samples = { print: [] as number[], opencode: [] as number[], claude: [] as number[] };
    const doctor: number[] = [];
    for (let i = 0; i < runs; i++) {
      samples.print.push(await cliOnce(["host", "print-config", "vscode", "--mode", "inspect"]));
      samples.opencode.push(await cliOnce(["host", "connect", "opencode", "--mode", "repro-fix"]));
      samples.claude.push(await cliOnce(["host", "connect", "claude-code", "--mode", "repro-fix"]));
      await cliOnce(["host", "connect", "codex", "--project-path", repoRoot]);
      doctor.push(await cliOnce(["host", "doctor"]));
      log(`run ${i + 1}: doctor ${doctor[i]!.toFixed(0)} ms`);
    }
    const rows: [string, ReturnType<typeof stats>][] = [
      ["host print-config vscode (ms)", stats(samples.print)],
      ["host connect opencode, file edit (ms)", stats(samples.opencode)],
      ["host connect claude-code, via claude (ms)", stats(samples.claude)],
      ["host doctor, 3 hosts with handshakes (ms)", stats(doctor)],
    ];
    await report("hosts", rows, { runs });
  } finally {
    process.env.HOME = saved.HOME;
    process.env.PATH = saved.PATH;
    fs.rmSync(home, { recursive: true, force: true });
  }
}

runMain(main);
