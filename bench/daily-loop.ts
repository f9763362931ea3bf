/**
 * The daily loop: what a cold create costs, what `pyro prepare` buys, what a
 * reset costs, and what an idle workspace holds in memory. Reports medians;
 * asserts no timing thresholds.
 *
 *   node --import tsx bench/daily-loop.ts
 *
 * Environment:
 *   BENCH_RUNS  samples per measurement (default 5)
 *   BENCH_ENV   environment of the workspaces (default debian:12)
 *   PYRO_HOME   respected through the SDK (new Pyro())
 *
 * Everything goes through the SDK. First `pyro.prepare({ environment })` (not
 * timed; its status is reported) so the environment is built and the warm
 * snapshot is valid, then one uncounted warm create → exec → delete so the
 * process's own caches settle. Then:
 *   1. cold: standby VMs off, with the warm image directory (<cache>/warm/<slug>-1c-1024m)
 *      renamed aside, create → first `exec(id, "true")` result; every sample
 *      must report boot_kind "cold". The directory is renamed back afterwards,
 *      on error, and on SIGINT/SIGTERM; a run that was killed outright leaves
 *      it as `<dir>.bench-hidden-<pid>`, which the next run puts back;
 *   2. warm: the same with the warm image in place; boot_kind must be "warm".
 *      First with standby VMs off (PYRO_STANDBY=0: every create restores its
 *      own VM), then on (the default: each sample first waits until the
 *      standby VM is ready, and its create must take it over; the wait is
 *      reported as the refill time, and the standby's own idle RSS too);
 *   3. reset: on one warm workspace, `reset(id)` and reset → first exec
 *      result, standby off and then on, as in (2);
 *   4. fork (standby off: a fork always restores its own copy): of one
 *      running warm workspace, `fork(id)` and fork → first exec result on
 *      the fork (deleted after each sample). A warm source is copied as a
 *      memory delta (vm/fork-copy.ts); the fork's boot_note says so, and a
 *      sample that copied the whole memory instead is not counted. The first
 *      sample (the first fork of that source) is also reported alone;
 *   5. network: `pyro.prepare({ environment, network: true })` (not timed),
 *      then warm creates with network policy "egress" → first exec, restore
 *      and standby as in (2); and on one egress+published-ports workspace,
 *      `startService` of `python3 -m http.server 8000` with HTTP readiness and
 *      the port published, until it is ready (stopped after each sample);
 *   6. idle memory: every workspace of (1) and (2), after ~5 s idle following
 *      its first exec, has the VmRSS of its QEMU and of its supervisor read
 *      from /proc (pids from <data>/workspaces/<id>/workspace.json).
 * A create or reset that comes up the other way (a warm restore falling back
 * to a cold boot) is not counted: it is logged, listed under unexpected_boots,
 * and tried again, up to BENCH_RUNS extra attempts per measurement.
 * Ratios are of medians: warm/cold create → first exec (restore and standby),
 * reset/warm create (restore and standby, each against its own kind of
 * create) and fork/warm create (→ first exec over create → first exec, and
 * the bare calls).
 *
 * Every workspace this creates carries the label pyro-bench=<pid> and is
 * deleted at the end even on error; SIGINT or SIGTERM deletes them before
 * exiting.
 *
 * Human table on stderr, JSON on stdout and in bench/results/daily-loop-latest.json.
 */
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { environmentSlug } from "../src/environments/catalog.js";
import { Pyro } from "../src/sdk/pyro.js";
import { processAlive } from "../src/util/procs.js";
import { resolvePaths } from "../src/config/paths.js";
import { DEFAULTS } from "../src/limits.js";
import {
  liveStandby,
  spawnStandby,
  stopStandbys,
  type StandbySlot,
} from "../src/supervisor/standby-pool.js";
import type { WorkspaceRecord } from "../src/records/store.js";
import { FORK_DELTA_NOTE } from "../src/supervisor/workspace-supervisor.js";
import {
  deleteLabelledOnSignal,
  elapsedMs,
  hostInfo,
  isBuilt,
  log,
  parseRuns,
  resultsPath,
  runMain,
  stats,
  table,
  timed,
  writeResults,
  type Stats,
} from "./lib.js";

const resultsFile = resultsPath("daily-loop");
const BENCH_LABEL = "pyro-bench";
const IDLE_MS = 5000;
const HIDDEN_INFIX = ".bench-hidden-";

type BootKind = "warm" | "cold";
/** How a warm create or reset gets its VM: a restore of its own, or taking over the standby VM. */
type WarmPath = "restore" | "standby";
const STANDBY_NOTE = "took over a standby VM";

interface CreateSample {
  create: number;
  createToFirstExec: number;
  bootMs: number | null;
  qemuRssMib: number;
  /** The part of QEMU's RSS that is its own (RssAnon); the rest is shared page cache (the RAM file). */
  qemuAnonMib: number;
  supervisorRssMib: number;
}

/** A create or reset that came up the other way (e.g. a warm restore that fell back to cold). */
interface UnexpectedBoot {
  sample: string;
  expected: BootKind | WarmPath;
  got: BootKind | null;
  note: string | null;
  /** create (or reset) → first exec result of that attempt. */
  to_first_exec_ms: number;
}

interface ForkSample {
  fork: number;
  forkToFirstExec: number;
  bootMs: number | null;
}

interface ResetSample {
  reset: number;
  resetToFirstExec: number;
  bootMs: number | null;
}

/** VmRSS (or another /proc status field) of `pid` in MiB; refuses a pid whose command line does not mention `expect`. */
function rssMib(pid: number | null, expect: string, field = "VmRSS"): number {
  if (pid === null) throw new Error(`no pid recorded for the ${expect} process`);
  const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
  if (!cmdline.includes(expect)) throw new Error(`pid ${pid} is not a ${expect} process`);
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, "m").exec(status)?.[1];
  if (kb === undefined) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(kb) / 1024;
}

/** Median a / median b, to three decimals. */
function ratio(a: Stats, b: Stats): number {
  return Math.round((a.median / b.median) * 1000) / 1000;
}

async function main(): Promise<void> {
  const runs = parseRuns(process.env.BENCH_RUNS, 5);
  const environment = process.env.BENCH_ENV || "debian:12";
  if (!isBuilt()) throw new Error("dist/ is missing: run `npm run build` first");
  const pyro = new Pyro();
  const paths = resolvePaths(process.env);
  const ws = pyro.workspaces;
  const labels = { [BENCH_LABEL]: String(process.pid) };
  const warmRoot = path.join(paths.cache, "warm");
  const warmDir = path.join(
    warmRoot,
    `${environmentSlug(environment)}-${DEFAULTS.vcpuCount}c-${DEFAULTS.memMib}m`,
  );
  const hiddenDir = `${warmDir}${HIDDEN_INFIX}${process.pid}`;
  log(`environment ${environment}, ${runs} run(s) each, state in ${paths.data}`);

  // A run that was killed outright (SIGKILL) left the warm image renamed aside: put it back.
  if (fs.existsSync(warmRoot)) {
    const prefix = `${path.basename(warmDir)}${HIDDEN_INFIX}`;
    for (const entry of fs.readdirSync(warmRoot)) {
      if (!entry.startsWith(prefix) || processAlive(Number(entry.slice(prefix.length)))) continue;
      const leftover = path.join(warmRoot, entry);
      if (fs.existsSync(warmDir)) {
        log(`${leftover} is left from an earlier run; ${warmDir} exists, so it stays as it is`);
      } else {
        fs.renameSync(leftover, warmDir);
        log(`put back ${warmDir}, left aside by an earlier run`);
      }
    }
  }

  // The warm image is renamed aside only while the cold samples run.
  let hidden = false;
  const restoreWarm = (): void => {
    if (!hidden) return;
    hidden = false;
    if (fs.existsSync(warmDir)) {
      log(`${warmDir} exists again; the original is left at ${hiddenDir}`);
      return;
    }
    fs.renameSync(hiddenDir, warmDir);
    log(`warm image back at ${warmDir}`);
  };
  process.on("exit", restoreWarm);

  // Put the warm image back and delete whatever this process created if it is interrupted.
  const removeSignalHandlers = deleteLabelledOnSignal(ws, BENCH_LABEL, labels[BENCH_LABEL]!, () => {
    try {
      restoreWarm();
    } catch (error) {
      log(`could not put back ${warmDir}: ${String(error)}`);
    }
  });

  const execTrue = async (id: string): Promise<void> => {
    const result = await ws.exec(id, "true");
    if (result.exit_code !== 0) throw new Error(`\`true\` exited ${result.exit_code} in the guest`);
  };

  /** True when `workspace` came up as `kind`; otherwise logs and records it. */
  const unexpected: UnexpectedBoot[] = [];
  const bootIs = (
    sample: string,
    workspace: { boot_kind: BootKind | null; boot_note: string | null },
    kind: BootKind,
    toFirstExec: number,
    warmPath?: WarmPath,
  ): boolean => {
    const tookStandby = workspace.boot_note === STANDBY_NOTE;
    if (
      workspace.boot_kind === kind &&
      (warmPath === undefined || tookStandby === (warmPath === "standby"))
    )
      return true;
    unexpected.push({
      sample,
      expected: warmPath ?? kind,
      got: workspace.boot_kind,
      note: workspace.boot_note,
      to_first_exec_ms: Math.round(toFirstExec),
    });
    log(
      `${sample}: expected a ${kind} boot, got ${workspace.boot_kind ?? "none"}${workspace.boot_note ? ` (${workspace.boot_note})` : ""} after ${toFirstExec.toFixed(0)} ms; not counted, trying again`,
    );
    return false;
  };

  /** `runs` samples of `attempt` (null: not counted), allowing `runs` extra attempts. */
  const gather = async <T>(
    phase: string,
    attempt: (label: string) => Promise<T | null>,
  ): Promise<T[]> => {
    const samples: T[] = [];
    for (let tries = 0; samples.length < runs; tries++) {
      if (tries >= 2 * runs) {
        throw new Error(
          `${phase}: only ${samples.length} of ${runs} samples came up as expected in ${tries} attempts`,
        );
      }
      const sample = await attempt(`${phase} ${samples.length + 1}/${runs}`);
      if (sample !== null) samples.push(sample);
    }
    return samples;
  };

  /** The supervisor's and QEMU's pids as the workspace's record on disk has them. */
  const readPids = (id: string): Pick<WorkspaceRecord, "qemu_pid" | "supervisor_pid"> =>
    JSON.parse(
      fs.readFileSync(path.join(paths.data, "workspaces", id, "workspace.json"), "utf8"),
    ) as WorkspaceRecord;

  const slotOf = (network: boolean): StandbySlot => ({
    environment,
    vcpus: DEFAULTS.vcpuCount,
    memMib: DEFAULTS.memMib,
    network,
  });
  const slot = slotOf(false);
  /** Standby VMs on (the default) or off (PYRO_STANDBY=0, and any running one stopped). */
  const useStandby = async (on: boolean): Promise<void> => {
    if (on) {
      delete process.env.PYRO_STANDBY;
      return;
    }
    process.env.PYRO_STANDBY = "0";
    stopStandbys(paths);
    while (liveStandby(paths, slot) || liveStandby(paths, slotOf(true))) await sleep(50);
  };
  /** Until the slot's standby is ready (started if there is none); how long that took is logged. */
  const refillTimes: number[] = [];
  const standbyReady = async (label: string, network = false): Promise<void> => {
    const start = Date.now();
    spawnStandby(paths, slotOf(network));
    while (liveStandby(paths, slotOf(network))?.state !== "ready") {
      if (Date.now() - start > 120_000) throw new Error(`${label}: no standby VM ready in 120 s`);
      await sleep(20);
    }
    if (!network) refillTimes.push(Date.now() - start);
  };

  /** create → first exec result, then ~5 s idle and the RSS of its processes; deletes it. */
  const createSample = async (
    kind: BootKind,
    label: string,
    warmPath?: WarmPath,
    networkPolicy?: "egress",
  ): Promise<CreateSample | null> => {
    if (warmPath === "standby") await standbyReady(label, networkPolicy !== undefined);
    const start = process.hrtime.bigint();
    const [workspace, create] = await timed(() =>
      ws.create({ environment, labels, networkPolicy }),
    );
    try {
      await execTrue(workspace.id);
      const createToFirstExec = elapsedMs(start);
      if (!bootIs(label, workspace, kind, createToFirstExec, warmPath)) return null;
      await sleep(IDLE_MS);
      const pids = readPids(workspace.id);
      const sample: CreateSample = {
        create,
        createToFirstExec,
        bootMs: workspace.boot_ms,
        qemuRssMib: rssMib(pids.qemu_pid, "qemu-system"),
        qemuAnonMib: rssMib(pids.qemu_pid, "qemu-system", "RssAnon"),
        supervisorRssMib: rssMib(pids.supervisor_pid, "supervisor.js"),
      };
      log(
        `${label}: create ${create.toFixed(0)} ms (boot ${workspace.boot_ms} ms, ${workspace.boot_kind}), first exec result at ${createToFirstExec.toFixed(0)} ms; idle RSS qemu ${sample.qemuRssMib.toFixed(1)} MiB, supervisor ${sample.supervisorRssMib.toFixed(1)} MiB`,
      );
      return sample;
    } finally {
      await ws.delete(workspace.id);
    }
  };

  // ---- prepare (not timed) and one uncounted warm cycle -------------------
  log(`pyro.prepare({ environment: "${environment}" })`);
  const prepared = await pyro.prepare({ environment });
  log(
    `prepare: ${prepared.status}${prepared.reason ? ` (${prepared.reason})` : ""} in ${prepared.duration_ms} ms`,
  );
  const accel = prepared.accel;
  log("warm-up: one uncounted warm create → exec → delete");
  {
    const workspace = await ws.create({ environment, labels });
    try {
      await execTrue(workspace.id);
    } finally {
      await ws.delete(workspace.id);
    }
  }

  // ---- 1. cold: the warm image renamed aside (and no standby VM) ----------
  await useStandby(false);
  let cold: CreateSample[] = [];
  if (fs.existsSync(warmDir)) {
    fs.renameSync(warmDir, hiddenDir);
    hidden = true;
    log(`warm image renamed aside to ${hiddenDir}`);
  } else {
    log(`${warmDir} does not exist; creates are cold without hiding anything`);
  }
  try {
    cold = await gather("cold", (label) => createSample("cold", label));
  } finally {
    restoreWarm();
  }

  // ---- 2. warm: a restore of its own, then taking over a standby VM -------
  const warm = await gather("warm", (label) => createSample("warm", label, "restore"));
  await useStandby(true);
  const warmStandby = await gather("warm standby", (label) =>
    createSample("warm", label, "standby"),
  );
  // What the standby itself holds while it waits.
  await standbyReady("standby rss");
  const standby = liveStandby(paths, slot)!;
  const standbyRss = {
    qemu: rssMib(standby.qemu_pid, "qemu-system"),
    qemuAnon: rssMib(standby.qemu_pid, "qemu-system", "RssAnon"),
    supervisor: rssMib(standby.supervisor_pid, "supervisor.js"),
  };
  log(
    `standby VM idle RSS: qemu ${standbyRss.qemu.toFixed(1)} MiB (own ${standbyRss.qemuAnon.toFixed(1)}), supervisor ${standbyRss.supervisor.toFixed(1)} MiB`,
  );
  await useStandby(false);

  // ---- 3. reset, on one warm workspace ------------------------------------
  let resets: ResetSample[] = [];
  let resetsStandby: ResetSample[] = [];
  {
    // A workspace that itself came up warm (a cold one is deleted and replaced).
    let workspace: Awaited<ReturnType<typeof ws.create>> | undefined;
    for (let tries = 1; workspace === undefined; tries++) {
      const start = process.hrtime.bigint();
      const created = await ws.create({ environment, labels });
      try {
        await execTrue(created.id);
      } catch (error) {
        await ws.delete(created.id);
        throw error;
      }
      if (bootIs(`reset workspace ${tries}`, created, "warm", elapsedMs(start))) {
        workspace = created;
      } else {
        await ws.delete(created.id);
        if (tries > runs) throw new Error(`no warm workspace to reset in ${tries} attempts`);
      }
    }
    const id = workspace.id;
    const resetSample =
      (warmPath: WarmPath) =>
      async (label: string): Promise<ResetSample | null> => {
        if (warmPath === "standby") await standbyReady(label);
        const start = process.hrtime.bigint();
        const [after, reset] = await timed(() => ws.reset(id));
        await execTrue(id);
        const resetToFirstExec = elapsedMs(start);
        if (!bootIs(label, after, "warm", resetToFirstExec, warmPath)) return null;
        log(
          `${label}: ${reset.toFixed(0)} ms (boot ${after.boot_ms} ms, ${after.boot_kind}${after.boot_note ? `, ${after.boot_note}` : ""}), first exec result at ${resetToFirstExec.toFixed(0)} ms`,
        );
        return { reset, resetToFirstExec, bootMs: after.boot_ms };
      };
    try {
      resets = await gather("reset", resetSample("restore"));
      await useStandby(true);
      resetsStandby = await gather("reset standby", resetSample("standby"));
      await useStandby(false);
    } finally {
      await ws.delete(id);
    }
  }

  // ---- 4. fork, of one running warm workspace --------------------------------
  let forks: ForkSample[] = [];
  {
    const source = await ws.create({ environment, labels });
    try {
      await execTrue(source.id);
      forks = await gather("fork", async (label) => {
        const start = process.hrtime.bigint();
        const [forked, fork] = await timed(() => ws.fork(source.id));
        try {
          await execTrue(forked.id);
          const forkToFirstExec = elapsedMs(start);
          if (!bootIs(label, forked, "warm", forkToFirstExec)) return null;
          if (forked.boot_note !== FORK_DELTA_NOTE) {
            unexpected.push({
              sample: label,
              expected: "warm",
              got: forked.boot_kind,
              note: forked.boot_note ?? "copied the whole memory, not a memory delta",
              to_first_exec_ms: Math.round(forkToFirstExec),
            });
            log(
              `${label}: not a memory-delta fork (${forked.boot_note ?? "no note"}); not counted`,
            );
            return null;
          }
          log(
            `${label}: ${fork.toFixed(0)} ms (boot ${forked.boot_ms} ms, ${forked.boot_kind}), first exec result at ${forkToFirstExec.toFixed(0)} ms`,
          );
          return { fork, forkToFirstExec, bootMs: forked.boot_ms };
        } finally {
          await ws.delete(forked.id);
        }
      });
    } finally {
      await ws.delete(source.id);
    }
  }

  // ---- 5. network: egress creates, and a service until ready -----------------
  log(`pyro.prepare({ environment: "${environment}", network: true })`);
  const preparedNetwork = await pyro.prepare({ environment, network: true });
  log(`prepare --network: ${preparedNetwork.status} in ${preparedNetwork.duration_ms} ms`);
  const egress = await gather("egress warm", (label) =>
    createSample("warm", label, "restore", "egress"),
  );
  await useStandby(true);
  const egressStandby = await gather("egress standby", (label) =>
    createSample("warm", label, "standby", "egress"),
  );
  await useStandby(false);
  let serviceReady: number[] = [];
  {
    const host = await ws.create({ environment, labels, networkPolicy: "egress+published-ports" });
    try {
      await execTrue(host.id);
      serviceReady = await gather("service start", async (label) => {
        const [service, ms] = await timed(() =>
          ws.startService(host.id, "web", {
            command: "python3 -m http.server 8000",
            readyHttp: "http://127.0.0.1:8000/",
            publish: ["8000"],
          }),
        );
        log(
          `${label}: ready in ${ms.toFixed(0)} ms, published on 127.0.0.1:${service.published_ports[0]?.host_port}`,
        );
        await ws.stopService(host.id, "web");
        return ms;
      });
    } finally {
      await ws.delete(host.id);
    }
  }

  removeSignalHandlers();
  process.off("exit", restoreWarm);
  await useStandby(false); // leave no standby VM of ours behind
  delete process.env.PYRO_STANDBY;

  const bootStats = (samples: { bootMs: number | null }[]): Stats =>
    stats(samples.flatMap((s) => (s.bootMs === null ? [] : [s.bootMs])));
  const coldToFirst = stats(cold.map((s) => s.createToFirstExec));
  const warmToFirst = stats(warm.map((s) => s.createToFirstExec));
  const warmCreate = stats(warm.map((s) => s.create));
  const resetStats = stats(resets.map((s) => s.reset));
  const resetToFirst = stats(resets.map((s) => s.resetToFirstExec));
  const standbyToFirst = stats(warmStandby.map((s) => s.createToFirstExec));
  const standbyCreate = stats(warmStandby.map((s) => s.create));
  const resetStandbyStats = stats(resetsStandby.map((s) => s.reset));
  const resetStandbyToFirst = stats(resetsStandby.map((s) => s.resetToFirstExec));
  const forkStats = stats(forks.map((s) => s.fork));
  const forkToFirst = stats(forks.map((s) => s.forkToFirstExec));
  const result = {
    environment,
    runs,
    accel,
    host: hostInfo(),
    idle_ms: IDLE_MS,
    warm_snapshot_dir: warmDir,
    prepare: {
      status: prepared.status,
      reason: prepared.reason,
      duration_ms: prepared.duration_ms,
      snapshot_bytes: prepared.snapshot_bytes,
    },
    cold_create_ms: stats(cold.map((s) => s.create)),
    cold_boot_ms: bootStats(cold),
    cold_create_to_first_exec_ms: coldToFirst,
    warm_create_ms: warmCreate,
    warm_boot_ms: bootStats(warm),
    warm_create_to_first_exec_ms: warmToFirst,
    /** Creates that took over the standby VM (each waited for it to be ready first). */
    standby_create_ms: standbyCreate,
    standby_create_to_first_exec_ms: standbyToFirst,
    /** From a take-over (or none) until the next standby was ready. */
    standby_refill_ms: stats(refillTimes),
    standby_idle_rss_mib: standbyRss,
    reset_ms: resetStats,
    reset_boot_ms: bootStats(resets),
    reset_to_first_exec_ms: resetToFirst,
    standby_reset_ms: resetStandbyStats,
    standby_reset_to_first_exec_ms: resetStandbyToFirst,
    fork_ms: forkStats,
    fork_boot_ms: bootStats(forks),
    fork_to_first_exec_ms: forkToFirst,
    /** The first fork of the source (its samples come one after another). */
    first_fork_to_first_exec_ms: forks[0]?.forkToFirstExec ?? null,
    /** VmRSS after ~5 s idle, warm workspaces of (2). */
    idle_rss_qemu_mib: stats(warm.map((s) => s.qemuRssMib)),
    idle_rss_anon_qemu_mib: stats(warm.map((s) => s.qemuAnonMib)),
    idle_rss_supervisor_mib: stats(warm.map((s) => s.supervisorRssMib)),
    /** The same for the cold workspaces of (1), for comparison. */
    idle_rss_cold_qemu_mib: stats(cold.map((s) => s.qemuRssMib)),
    idle_rss_cold_supervisor_mib: stats(cold.map((s) => s.supervisorRssMib)),
    /** Ratios of medians. */
    ratio_warm_to_cold_create_to_first_exec: ratio(warmToFirst, coldToFirst),
    ratio_standby_to_cold_create_to_first_exec: ratio(standbyToFirst, coldToFirst),
    ratio_standby_reset_to_standby_create_to_first_exec: ratio(resetStandbyToFirst, standbyToFirst),
    ratio_standby_reset_to_standby_create: ratio(resetStandbyStats, standbyCreate),
    ratio_fork_to_standby_create_to_first_exec: ratio(forkToFirst, standbyToFirst),
    ratio_reset_to_warm_create_to_first_exec: ratio(resetToFirst, warmToFirst),
    ratio_reset_to_warm_create: ratio(resetStats, warmCreate),
    ratio_fork_to_warm_create_to_first_exec: ratio(forkToFirst, warmToFirst),
    ratio_fork_to_warm_create: ratio(forkStats, warmCreate),
    ratio_first_fork_to_fork_median:
      forks[0] === undefined
        ? null
        : Math.round((forks[0].forkToFirstExec / forkToFirst.median) * 1000) / 1000,
    /** Network policy "egress": warm creates from the networked warm image, and its standby. */
    egress_warm_create_to_first_exec_ms: stats(egress.map((s) => s.createToFirstExec)),
    egress_standby_create_to_first_exec_ms: stats(egressStandby.map((s) => s.createToFirstExec)),
    /** startService of `python3 -m http.server` with HTTP readiness and a published port, until ready. */
    service_start_to_ready_ms: stats(serviceReady),
    /** Attempts not counted because they came up the other way. */
    unexpected_boots: unexpected,
  };

  const percent = (r: number): number => Math.round(r * 1000) / 10;
  process.stderr.write(
    `\npyro daily-loop benchmark: ${environment}, accel ${accel}, ${result.host.cpus} cpus, kernel ${result.host.kernel}, ${runs} runs, prepare ${prepared.status}\n\n` +
      table([
        ["cold create (ms)", result.cold_create_ms],
        ["  of which boot to agent-ready (ms)", result.cold_boot_ms],
        ["cold create → first exec result (ms)", result.cold_create_to_first_exec_ms],
        ["warm create (ms)", result.warm_create_ms],
        ["  of which restore to agent-ready (ms)", result.warm_boot_ms],
        ["warm create → first exec result (ms)", result.warm_create_to_first_exec_ms],
        ["standby create (ms)", result.standby_create_ms],
        ["standby create → first exec result (ms)", result.standby_create_to_first_exec_ms],
        ["standby refill, until ready (ms)", result.standby_refill_ms],
        ["reset (ms)", result.reset_ms],
        ["  of which restore to agent-ready (ms)", result.reset_boot_ms],
        ["reset → first exec result (ms)", result.reset_to_first_exec_ms],
        ["standby reset (ms)", result.standby_reset_ms],
        ["standby reset → first exec result (ms)", result.standby_reset_to_first_exec_ms],
        ["fork (ms)", result.fork_ms],
        ["  of which restore to agent-ready (ms)", result.fork_boot_ms],
        ["fork → first exec result (ms)", result.fork_to_first_exec_ms],
        [
          "first fork → first exec result (ms)",
          result.first_fork_to_first_exec_ms === null
            ? 0
            : Math.round(result.first_fork_to_first_exec_ms),
        ],
        ["egress warm create → first exec result (ms)", result.egress_warm_create_to_first_exec_ms],
        [
          "egress standby create → first exec result (ms)",
          result.egress_standby_create_to_first_exec_ms,
        ],
        ["service start → ready, python3 -m http.server (ms)", result.service_start_to_ready_ms],
        ["idle RSS qemu, warm (MiB)", result.idle_rss_qemu_mib],
        ["  of which its own (RssAnon, MiB)", result.idle_rss_anon_qemu_mib],
        ["idle RSS supervisor, warm (MiB)", result.idle_rss_supervisor_mib],
        ["idle RSS qemu, cold (MiB)", result.idle_rss_cold_qemu_mib],
        ["idle RSS supervisor, cold (MiB)", result.idle_rss_cold_supervisor_mib],
        [
          "warm/cold, create → first exec (%)",
          percent(result.ratio_warm_to_cold_create_to_first_exec),
        ],
        [
          "standby/cold, create → first exec (%)",
          percent(result.ratio_standby_to_cold_create_to_first_exec),
        ],
        [
          "standby reset/standby create, → first exec (%)",
          percent(result.ratio_standby_reset_to_standby_create_to_first_exec),
        ],
        [
          "fork/standby create, → first exec (%)",
          percent(result.ratio_fork_to_standby_create_to_first_exec),
        ],
        [
          "reset/warm create, → first exec (%)",
          percent(result.ratio_reset_to_warm_create_to_first_exec),
        ],
        ["reset/warm create, calls only (%)", percent(result.ratio_reset_to_warm_create)],
        [
          "fork/warm create, → first exec (%)",
          percent(result.ratio_fork_to_warm_create_to_first_exec),
        ],
        ["fork/warm create, calls only (%)", percent(result.ratio_fork_to_warm_create)],
      ]) +
      "\n" +
      (unexpected.length > 0
        ? `\n${unexpected.length} attempt(s) not counted, they came up the other way:\n${unexpected.map((u) => `  ${u.sample}: expected ${u.expected}, got ${u.got ?? "none"} (${u.note ?? "no note"}), ${u.to_first_exec_ms} ms to first exec`).join("\n")}\n`
        : "") +
      "\n",
  );

  await writeResults(result, resultsFile);
}

runMain(main);
