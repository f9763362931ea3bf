/**
 * Boot latency benchmark. Reports medians; asserts no timing thresholds.
 *
 *   node --import tsx bench/boot.ts
 *
 * Environment:
 *   BENCH_RUNS  measured runs per scenario (default 5)
 *   BENCH_ENV   environment to boot (default debian:12)
 *   PYRO_HOME   respected through resolvePaths()
 *
 * Measures, after one uncounted warm-up (which builds the environment and the
 * runtime disk if they are missing and settles the accelerator verdict):
 *   1. launchVm() cold boot to agent-ready (vm.bootMs), plus the round trip of
 *      `exec true` timed on the host and the guest's own duration_ms for it;
 *   2. wall time of `node dist/cli.js run <env> -- true` as a subprocess.
 *
 * Human table on stderr, JSON on stdout and in bench/results/boot-latest.json.
 */
import { resolvePaths } from "../src/config/paths.js";
import { EnvironmentCache } from "../src/environments/cache.js";
import type { ProgressFn } from "../src/util/progress.js";
import { launchVm, type LaunchContext } from "../src/boot/launch.js";
import {
  cliOnce,
  elapsedMs,
  hostInfo,
  isBuilt,
  log,
  parseRuns,
  resultsPath,
  runMain,
  stats,
  table,
  writeResults,
} from "./lib.js";

const resultsFile = resultsPath("boot");

const progress: ProgressFn = (message) => log(`  ${message.trimEnd()}`);

interface BootSample {
  bootMs: number;
  execRoundtripMs: number;
  execGuestMs: number;
}

/** One launchVm → exec true → destroy cycle. */
async function bootOnce(ctx: LaunchContext, environment: string): Promise<BootSample> {
  const launched = await launchVm(ctx, { environment, ephemeral: true, vcpus: 1, memMib: 1024 });
  try {
    const start = process.hrtime.bigint();
    const result = await launched.vm.agent.exec({ argv: ["true"] });
    const execRoundtripMs = elapsedMs(start);
    if (result.exit_code !== 0) {
      throw new Error(`\`true\` exited ${result.exit_code} in the guest`);
    }
    return { bootMs: launched.vm.bootMs, execRoundtripMs, execGuestMs: result.duration_ms };
  } finally {
    await launched.vm.destroy();
  }
}

/** Wall time of `node dist/cli.js run <env> -- true`; rejects unless it exits 0. */
function cliRunOnce(environment: string): Promise<number> {
  return cliOnce(["run", environment, "--", "true"], "pyro run");
}

async function main(): Promise<void> {
  const runs = parseRuns(process.env.BENCH_RUNS, 5);
  const environment = process.env.BENCH_ENV || "debian:12";
  if (!isBuilt()) {
    throw new Error("dist/cli.js or dist/agent.js is missing: run `npm run build` first");
  }
  const paths = resolvePaths();
  const cache = new EnvironmentCache(paths);
  const ctx: LaunchContext = { paths, cache, progress, maxRunning: Number.MAX_SAFE_INTEGER };
  log(`environment ${environment}, ${runs} run(s) each, state in ${paths.data}`);

  // Warm-up (not counted): builds the environment / runtime disk if missing,
  // settles the accelerator verdict and warms the page cache.
  log("warm-up: ensuring the environment (may take minutes the first time) and booting once");
  const warmStart = process.hrtime.bigint();
  await cache.ensure(environment, progress);
  await cache.ensureRuntime(progress);
  const warm = await launchVm(ctx, { environment, ephemeral: true, vcpus: 1, memMib: 1024 });
  const accel = warm.accel.accel;
  try {
    await warm.vm.agent.exec({ argv: ["true"] });
  } finally {
    await warm.vm.destroy();
  }
  log(`warm-up done in ${(elapsedMs(warmStart) / 1000).toFixed(1)}s (accel ${accel})`);

  const quietCtx: LaunchContext = { ...ctx, progress: () => {} };
  const boots: BootSample[] = [];
  for (let i = 1; i <= runs; i++) {
    const sample = await bootOnce(quietCtx, environment);
    boots.push(sample);
    log(
      `boot ${i}/${runs}: agent-ready ${sample.bootMs} ms, exec true ${sample.execRoundtripMs.toFixed(1)} ms (guest ${sample.execGuestMs} ms)`,
    );
  }

  const cliWalls: number[] = [];
  for (let i = 1; i <= runs; i++) {
    const ms = await cliRunOnce(environment);
    cliWalls.push(ms);
    log(`cli run ${i}/${runs}: ${ms.toFixed(0)} ms`);
  }

  const result = {
    environment,
    runs,
    accel,
    host: hostInfo(),
    cold_boot_to_agent_ready_ms: stats(boots.map((b) => b.bootMs)),
    run_true_wall_ms: stats(cliWalls),
    exec_true_roundtrip_ms: stats(boots.map((b) => b.execRoundtripMs)),
    exec_true_guest_ms: stats(boots.map((b) => b.execGuestMs)),
    /** Per boot: host round trip minus the guest's own duration. */
    exec_true_host_overhead_ms: stats(boots.map((b) => b.execRoundtripMs - b.execGuestMs)),
  };

  process.stderr.write(
    `\npyro boot benchmark: ${environment}, accel ${accel}, ${result.host.cpus} cpus, kernel ${result.host.kernel}, ${runs} runs\n\n` +
      table([
        ["cold boot to agent-ready (ms)", result.cold_boot_to_agent_ready_ms],
        ["`pyro run -- true` wall (ms)", result.run_true_wall_ms],
        ["exec true round trip, host (ms)", result.exec_true_roundtrip_ms],
        ["exec true duration, guest (ms)", result.exec_true_guest_ms],
        ["exec host-side overhead (ms)", result.exec_true_host_overhead_ms],
      ]) +
      "\n\n",
  );

  await writeResults(result, resultsFile);
}

runMain(main);
