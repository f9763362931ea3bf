/**
 * Persistent-workspace latency benchmark. Reports medians; asserts no timing thresholds.
 *
 *   node --import tsx bench/workspace.ts
 *
 * Environment:
 *   BENCH_RUNS  samples per measurement (default 10)
 *   BENCH_ENV   environment of the workspaces (default debian:12)
 *   PYRO_HOME   respected through the SDK (new Pyro())
 *
 * On one workspace (created, warmed up with one uncounted round of everything,
 * deleted at the end even on error):
 *   1. SDK `workspaces.exec(id, "true")`: wall time, the guest's own
 *      duration_ms, and their difference (host-side overhead);
 *   2. CLI `node dist/cli.js workspace exec <id> -- true` as a subprocess:
 *      wall time, minus the median guest duration of (1) → CLI overhead; and
 *      `node dist/cli.js --version` wall time (bare Node + CLI start-up);
 *   3. SDK writeFile / readFile of bench.txt with 4 KiB and 1 MiB of content.
 * Then on workspaces of their own (3 cycles, empty seed):
 *   4. create → first exec result, and stop, start, delete wall times.
 *
 * Every workspace this creates carries the label pyro-bench=<pid>; SIGINT or
 * SIGTERM deletes them before exiting.
 *
 * Human table on stderr, JSON on stdout and in bench/results/workspace-latest.json.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { Pyro } from "../src/sdk/pyro.js";
import {
  cliOnce,
  deleteLabelledOnSignal,
  cliPath,
  elapsedMs,
  hostInfo,
  isBuilt,
  log,
  median,
  parseRuns,
  repoRoot,
  resultsPath,
  round,
  runMain,
  stats,
  table,
  timed,
  writeResults,
} from "./lib.js";

const resultsFile = resultsPath("workspace");
const LIFECYCLE_CYCLES = 3;
const SMALL_BYTES = 4 * 1024;
const LARGE_BYTES = 1024 * 1024;
const BENCH_LABEL = "pyro-bench";

function ensureBuilt(): void {
  if (isBuilt()) return;
  log("dist/ is missing: building (node scripts/build.mjs)");
  const built = spawnSync(process.execPath, ["scripts/build.mjs"], {
    cwd: repoRoot,
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (built.status !== 0 || !fs.existsSync(cliPath)) {
    throw new Error(`node scripts/build.mjs failed (${built.status ?? built.signal})`);
  }
}

/** Content of exactly `bytes` ASCII bytes, varied so nothing can short-cut it. */
function content(bytes: number): string {
  const line = "pyro workspace bench 0123456789 abcdefghijklmnopqrstuvwxyz\n";
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes);
}

interface ExecSample {
  wall: number;
  guest: number;
}

interface FileSamples {
  write: number[];
  read: number[];
}

interface LifecycleSample {
  create: number;
  createToFirstExec: number;
  firstExecGuest: number;
  bootMs: number | null;
  stop: number;
  start: number;
  delete: number;
}

async function main(): Promise<void> {
  const runs = parseRuns(process.env.BENCH_RUNS, 10);
  const environment = process.env.BENCH_ENV || "debian:12";
  ensureBuilt();
  const pyro = new Pyro();
  const ws = pyro.workspaces;
  const labels = { [BENCH_LABEL]: String(process.pid) };
  log(`environment ${environment}, ${runs} run(s) each, state in ${pyro.home.data}`);

  // Delete whatever this process created if it is interrupted.
  const removeSignalHandlers = deleteLabelledOnSignal(ws, BENCH_LABEL, labels[BENCH_LABEL]!);

  const execTrue = async (id: string): Promise<ExecSample> => {
    const [result, wall] = await timed(() => ws.exec(id, "true"));
    if (result.exit_code !== 0) throw new Error(`\`true\` exited ${result.exit_code} in the guest`);
    return { wall, guest: result.duration_ms };
  };

  // ---- one workspace: exec (SDK, CLI) and files --------------------------
  log("creating the workspace (builds the environment first if it is missing)");
  const [created, createMs] = await timed(() => ws.create({ environment, labels }));
  const id = created.id;
  const accel = created.accel;
  log(`created ${id} in ${createMs.toFixed(0)} ms (boot ${created.boot_ms} ms, accel ${accel})`);

  const sdkExec: ExecSample[] = [];
  const cliExec: number[] = [];
  const cliVersion: number[] = [];
  const small: FileSamples = { write: [], read: [] };
  const large: FileSamples = { write: [], read: [] };
  try {
    const smallText = content(SMALL_BYTES);
    const largeText = content(LARGE_BYTES);
    const fileRound = async (text: string, into?: FileSamples): Promise<void> => {
      const [written, writeMs] = await timed(() => ws.writeFile(id, "bench.txt", text));
      if (written.bytes_written !== text.length) {
        throw new Error(`writeFile wrote ${written.bytes_written} of ${text.length} bytes`);
      }
      const [read, readMs] = await timed(() =>
        ws.readFile(id, "bench.txt", { maxBytes: 2 * 1024 * 1024 }),
      );
      if (read.truncated || read.content !== text) {
        throw new Error(
          `readFile gave back ${read.bytes_read} bytes (truncated ${read.truncated}), not what was written`,
        );
      }
      into?.write.push(writeMs);
      into?.read.push(readMs);
    };

    // Warm-up (not counted): one of each, so caches and the guest's page cache settle.
    log("warm-up: one uncounted round of each operation");
    await execTrue(id);
    await cliOnce(["--version"]);
    await cliOnce(["workspace", "exec", id, "--", "true"]);
    await fileRound(smallText);
    await fileRound(largeText);

    for (let i = 1; i <= runs; i++) {
      const sample = await execTrue(id);
      sdkExec.push(sample);
      log(
        `sdk exec ${i}/${runs}: ${sample.wall.toFixed(1)} ms (guest ${sample.guest} ms, overhead ${(sample.wall - sample.guest).toFixed(1)} ms)`,
      );
    }
    for (let i = 1; i <= runs; i++) {
      const ms = await cliOnce(["--version"]);
      cliVersion.push(ms);
      log(`cli --version ${i}/${runs}: ${ms.toFixed(0)} ms`);
    }
    for (let i = 1; i <= runs; i++) {
      const ms = await cliOnce(["workspace", "exec", id, "--", "true"]);
      cliExec.push(ms);
      log(`cli workspace exec ${i}/${runs}: ${ms.toFixed(0)} ms`);
    }
    for (let i = 1; i <= runs; i++) {
      await fileRound(smallText, small);
      log(
        `4 KiB ${i}/${runs}: write ${small.write.at(-1)!.toFixed(1)} ms, read ${small.read.at(-1)!.toFixed(1)} ms`,
      );
    }
    for (let i = 1; i <= runs; i++) {
      await fileRound(largeText, large);
      log(
        `1 MiB ${i}/${runs}: write ${large.write.at(-1)!.toFixed(1)} ms, read ${large.read.at(-1)!.toFixed(1)} ms`,
      );
    }
  } finally {
    log(`deleting ${id}`);
    await ws.delete(id);
  }

  // ---- lifecycle: their own workspaces, empty seed -----------------------
  const cycles: LifecycleSample[] = [];
  for (let i = 1; i <= LIFECYCLE_CYCLES; i++) {
    const start = process.hrtime.bigint();
    const [workspace, create] = await timed(() => ws.create({ environment, labels }));
    let deleted = false;
    try {
      const first = await execTrue(workspace.id);
      const createToFirstExec = elapsedMs(start);
      const [, stop] = await timed(() => ws.stop(workspace.id));
      const [, startMs] = await timed(() => ws.start(workspace.id));
      const [, del] = await timed(() => ws.delete(workspace.id));
      deleted = true;
      const sample: LifecycleSample = {
        create,
        createToFirstExec,
        firstExecGuest: first.guest,
        bootMs: workspace.boot_ms,
        stop,
        start: startMs,
        delete: del,
      };
      cycles.push(sample);
      log(
        `lifecycle ${i}/${LIFECYCLE_CYCLES}: create ${create.toFixed(0)} ms (boot ${workspace.boot_ms} ms), first exec result at ${createToFirstExec.toFixed(0)} ms, stop ${stop.toFixed(0)} ms, start ${startMs.toFixed(0)} ms, delete ${del.toFixed(0)} ms`,
      );
    } finally {
      if (!deleted) await ws.delete(workspace.id);
    }
  }

  removeSignalHandlers();

  const guestMedian = median(sdkExec.map((s) => s.guest));
  const cliExecStats = stats(cliExec);
  const result = {
    environment,
    runs,
    lifecycle_cycles: LIFECYCLE_CYCLES,
    accel,
    host: hostInfo(),
    sdk_exec_true_wall_ms: stats(sdkExec.map((s) => s.wall)),
    sdk_exec_true_guest_ms: stats(sdkExec.map((s) => s.guest)),
    /** Per sample: SDK wall time minus the guest's own duration_ms. */
    sdk_exec_true_host_overhead_ms: stats(sdkExec.map((s) => s.wall - s.guest)),
    cli_version_wall_ms: stats(cliVersion),
    cli_exec_true_wall_ms: cliExecStats,
    /** Median CLI wall time minus the median guest duration of the SDK samples. */
    cli_exec_true_overhead_ms: round(cliExecStats.median - guestMedian),
    write_file_4k_ms: stats(small.write),
    read_file_4k_ms: stats(small.read),
    write_file_1m_ms: stats(large.write),
    read_file_1m_ms: stats(large.read),
    create_ms: stats(cycles.map((c) => c.create)),
    create_boot_ms: stats(cycles.flatMap((c) => (c.bootMs === null ? [] : [c.bootMs]))),
    create_to_first_exec_ms: stats(cycles.map((c) => c.createToFirstExec)),
    stop_ms: stats(cycles.map((c) => c.stop)),
    start_ms: stats(cycles.map((c) => c.start)),
    delete_ms: stats(cycles.map((c) => c.delete)),
  };

  process.stderr.write(
    `\npyro workspace benchmark: ${environment}, accel ${accel ?? "?"}, ${result.host.cpus} cpus, kernel ${result.host.kernel}, ${runs} runs (lifecycle: ${LIFECYCLE_CYCLES} cycles)\n\n` +
      table([
        ["sdk exec true wall (ms)", result.sdk_exec_true_wall_ms],
        ["sdk exec true guest duration (ms)", result.sdk_exec_true_guest_ms],
        ["sdk exec host-side overhead (ms)", result.sdk_exec_true_host_overhead_ms],
        ["`pyro --version` wall (ms)", result.cli_version_wall_ms],
        ["`pyro workspace exec -- true` wall (ms)", result.cli_exec_true_wall_ms],
        ["cli exec overhead, median-guest (ms)", result.cli_exec_true_overhead_ms],
        ["writeFile 4 KiB (ms)", result.write_file_4k_ms],
        ["readFile 4 KiB (ms)", result.read_file_4k_ms],
        ["writeFile 1 MiB (ms)", result.write_file_1m_ms],
        ["readFile 1 MiB (ms)", result.read_file_1m_ms],
        ["create, empty seed (ms)", result.create_ms],
        ["  of which boot to agent-ready (ms)", result.create_boot_ms],
        ["create → first exec result (ms)", result.create_to_first_exec_ms],
        ["stop (ms)", result.stop_ms],
        ["start (ms)", result.start_ms],
        ["delete (ms)", result.delete_ms],
      ]) +
      "\n\n",
  );

  await writeResults(result, resultsFile);
}

runMain(main);
