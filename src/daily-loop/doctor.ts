/**
 * `pyro doctor`: what this host can do, checked for real, every failing line
 * with its fix. Bounded in time: the KVM probe and the boot check have
 * timeouts, and nothing here waits on anything unbounded.
 */
import fs from "node:fs";
import os from "node:os";
import type { PyroPaths } from "../config/paths.js";
import type { EnvironmentCache } from "../environments/cache.js";
import { CATALOG, DEFAULT_ENVIRONMENT, findCatalogEntry } from "../environments/catalog.js";
import { isPyroError } from "../errors.js";
import { SETUP_HINT, checkRequirements, type RequirementStatus } from "../host/requirements.js";
import { silentProgress } from "../util/progress.js";
import { chooseAccel, kvmDeviceStatus, type AccelDecision } from "../vm/accel.js";
import { findQemu, type QemuInfo } from "../vm/qemu.js";
import { liveRecords } from "../vm/registry.js";
import { VERSION } from "../version.js";
import { launchVm } from "../boot/launch.js";
import { DEFAULTS } from "../limits.js";
import { listStandbys, liveStandby } from "../supervisor/standby-pool.js";
import { WarmImages } from "../boot/warm-image.js";
import { forkCopyMode } from "../vm/fork-copy.js";
import { checkHostNetwork, probeGuestNetwork, type NetworkCapability } from "./network-check.js";

export interface DoctorCheck {
  name: string;
  /** False only for a real failure: something pyro needs is broken or missing. */
  ok: boolean;
  /** Set when ok but worth acting on: a state, not a failure (e.g. a cold daily loop). */
  note?: boolean;
  detail: string;
  /** How to fix it (or, with note, how to improve it). */
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  pyro_version: string;
  platform: {
    os: string;
    arch: string;
    kernel: string;
    node: string;
    cpus: number;
    memory_mib: number;
  };
  qemu: { binary: string | null; version: string | null };
  /** How a fork of a running workspace copies its memory (vm/fork-copy.ts). */
  fork: { copy: "delta" | "full"; detail: string };
  kvm: { device: string; usable: boolean | null };
  acceleration: AccelDecision | null;
  host_tools: RequirementStatus[];
  environments: { name: string; state: string; size_bytes: number | null }[];
  cache: { path: string; bytes: number; warm_snapshot_bytes: number };
  /** With --environment: is the daily loop warm for it? */
  daily_loop: Readiness | null;
  /** The same for networked workspaces (the warm image variant with a NIC: `prepare --network`). */
  daily_loop_network: Readiness | null;
  running_vms: number;
  /** Standby VMs waiting for the next create or reset (supervisor/standby-pool.ts). */
  standby_vms: {
    environment: string;
    vcpu_count: number;
    mem_mib: number;
    state: "starting" | "ready";
    ready_at: string | null;
    idle_seconds: number;
  }[];
  capabilities: {
    boot: { ok: boolean; ms: number | null; detail: string };
    guest_exec: { ok: boolean; ms: number | null; detail: string };
    network: NetworkCapability;
  };
  checks: DoctorCheck[];
}

export interface DoctorOptions {
  /** Skip booting a guest (faster; capabilities are then reported as not checked). */
  skipBoot?: boolean;
  /** Also report this environment's daily-loop readiness (warm, cold or stale). */
  environment?: string;
}

export interface Readiness {
  environment: string;
  /** The networked variant (policies egress and egress+published-ports). */
  network: boolean;
  readiness: "warm" | "cold" | "stale";
  reason: string | null;
  /** What changed since the warm image was made, for stale. */
  changed: string[];
  fix: string | null;
}

export async function runDoctor(
  paths: PyroPaths,
  cache: EnvironmentCache,
  options: DoctorOptions = {},
): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const tools = checkRequirements();
  const missingTools = tools.filter((t) => !t.ok);
  checks.push({
    name: "host tools",
    ok: missingTools.length === 0,
    detail:
      missingTools.length === 0
        ? "all present"
        : `missing: ${missingTools.map((t) => t.binary).join(", ")}`,
    ...(missingTools.length
      ? {
          fix: `${SETUP_HINT} (apt-get install ${missingTools.map((t) => t.debian_package).join(" ")})`,
        }
      : {}),
  });

  const qemu = findQemu(paths.hostCache);
  checks.push({
    name: "qemu",
    ok: qemu !== undefined,
    detail: qemu
      ? `${qemu.binary} ${qemu.version}`
      : "qemu-system-x86_64 not found or not runnable",
    ...(qemu ? {} : { fix: SETUP_HINT }),
  });

  const fork = forkCopyMode();
  checks.push({
    name: "fork",
    ok: true,
    ...(fork.copy === "full" ? { note: true } : {}),
    detail: `${fork.copy === "delta" ? "memory delta" : "full copy"}${qemu ? ` (QEMU ${qemu.version})` : ""}: ${fork.reason}`,
  });

  const device = kvmDeviceStatus();
  const environments = await Promise.all(
    CATALOG.map(async (entry) => {
      const state = await cache.state(entry.name);
      const manifest = cache.readManifest(entry.name);
      return {
        name: entry.name,
        state,
        size_bytes: manifest ? cache.entrySizeBytes(manifest) : null,
      };
    }),
  );
  const installed =
    environments.find((e) => e.name === DEFAULT_ENVIRONMENT && e.state === "installed") ??
    environments.find((e) => e.state === "installed");
  // None installed yet is a cold cache (the first create builds one), not a failure.
  checks.push({
    name: "environments",
    ok: true,
    ...(installed ? {} : { note: true, fix: `run \`pyro prepare ${DEFAULT_ENVIRONMENT}\`` }),
    detail: environments.map((e) => `${e.name}: ${e.state}`).join(", "),
  });

  let acceleration: AccelDecision | null = null;
  if (qemu && installed) {
    const resolved = await cache.ensure(installed.name);
    acceleration = await chooseAccel(paths.hostCache, qemu, {
      kernel: resolved.kernel,
      initrd: resolved.initramfs,
    });
    checks.push({
      name: "acceleration",
      ok: true,
      detail: `${acceleration.accel === "kvm" ? "KVM" : "software emulation (TCG)"}: ${acceleration.reason}`,
    });
  } else {
    checks.push({
      name: "acceleration",
      // Without QEMU it is a failure; without an environment, only not known yet.
      ok: qemu !== undefined,
      ...(qemu === undefined ? {} : { note: true }),
      detail: `not probed (${qemu === undefined ? "no QEMU" : "no environment installed yet"}; ${device.reason})`,
      fix:
        qemu === undefined
          ? SETUP_HINT
          : `run \`pyro prepare ${DEFAULT_ENVIRONMENT}\` so there is a kernel to probe with`,
    });
  }

  let dailyLoop: Readiness | null = null;
  let dailyLoopNetwork: Readiness | null = null;
  if (options.environment !== undefined) {
    const environment = options.environment;
    findCatalogEntry(environment);
    dailyLoop = await readiness(paths, cache, environment, qemu, false);
    dailyLoopNetwork = await readiness(paths, cache, environment, qemu, true);
    for (const loop of [dailyLoop, dailyLoopNetwork]) {
      const standby = liveStandby(paths, {
        environment,
        vcpus: DEFAULTS.vcpuCount,
        memMib: DEFAULTS.memMib,
        network: loop.network,
      });
      checks.push({
        name: `daily loop (${environment}${loop.network ? ", network" : ""})`,
        // Cold and stale are states, not failures: creates work, they boot cold.
        ok: true,
        ...(loop.readiness === "warm" ? {} : { note: true }),
        detail:
          loop.readiness === "warm"
            ? standby?.state === "ready"
              ? "warm: a standby VM is ready for the next create or reset; after it, creates restore a snapshot"
              : "warm: creates restore a snapshot"
            : `${loop.readiness}: ${loop.reason}`,
        ...(loop.fix ? { fix: loop.fix } : {}),
      });
    }
  }

  const hostNetwork = await checkHostNetwork(qemu);
  const capabilities: DoctorReport["capabilities"] = {
    boot: { ok: false, ms: null, detail: "not checked" },
    guest_exec: { ok: false, ms: null, detail: "not checked" },
    network: hostNetwork,
  };
  if (options.skipBoot) {
    capabilities.boot.detail = capabilities.guest_exec.detail = "skipped (--skip-boot)";
  } else if (qemu && installed && missingTools.length === 0) {
    await checkBoot(paths, cache, installed.name, capabilities);
    checks.push({
      name: "boot",
      ok: capabilities.boot.ok,
      detail: capabilities.boot.detail,
      ...(capabilities.boot.ok
        ? {}
        : {
            fix: `see the detail; \`pyro env pull ${installed.name} --force\` rebuilds the environment`,
          }),
    });
    checks.push({
      name: "guest exec",
      ok: capabilities.guest_exec.ok,
      detail: capabilities.guest_exec.detail,
      ...(capabilities.guest_exec.ok ? {} : { fix: "see the detail above" }),
    });
  }
  const network = capabilities.network;
  checks.push({
    name: "network",
    ok: network.ok,
    detail:
      network.ok && network.ms === null
        ? `${network.detail} (not tried in a guest)`
        : network.detail,
    ...(network.ok ? {} : { fix: network.fix ?? SETUP_HINT }),
  });

  return {
    ok: checks.every((c) => c.ok),
    pyro_version: VERSION,
    platform: {
      os: `${os.type()} ${readOsRelease()}`.trim(),
      arch: os.arch(),
      kernel: os.release(),
      node: process.version,
      cpus: os.cpus().length,
      memory_mib: Math.round(os.totalmem() / 1048576),
    },
    qemu: { binary: qemu?.binary ?? null, version: qemu?.version ?? null },
    fork: { copy: fork.copy, detail: fork.reason },
    kvm: { device: device.reason, usable: acceleration ? acceleration.kvm_usable : null },
    acceleration,
    host_tools: tools,
    environments,
    cache: {
      path: paths.cache,
      bytes: cache.diskUsageBytes(),
      warm_snapshot_bytes: new WarmImages(paths, cache).diskUsageBytes(),
    },
    daily_loop: dailyLoop,
    daily_loop_network: dailyLoopNetwork,
    running_vms: liveRecords(paths.vms).filter((r) => !r.standby).length,
    standby_vms: listStandbys(paths).map((s) => ({
      environment: s.environment,
      vcpu_count: s.vcpu_count,
      mem_mib: s.mem_mib,
      state: s.state,
      ready_at: s.ready_at,
      idle_seconds: s.idle_seconds,
    })),
    capabilities,
    checks,
  };
}

async function checkBoot(
  paths: PyroPaths,
  cache: EnvironmentCache,
  environment: string,
  capabilities: DoctorReport["capabilities"],
): Promise<void> {
  // With a network device when the host can give one, so one boot checks that too.
  const network = capabilities.network.ok;
  try {
    const { vm, accel } = await launchVm(
      { paths, cache, progress: silentProgress, maxRunning: Number.MAX_SAFE_INTEGER },
      {
        environment,
        vcpus: 1,
        memMib: 512,
        ephemeral: true,
        ...(network ? { network: { allowHostPorts: [] } } : {}),
      },
    );
    capabilities.boot = {
      ok: true,
      ms: vm.bootMs,
      detail: `${environment} booted to agent-ready in ${vm.bootMs} ms (${accel.accel})`,
    };
    try {
      const started = Date.now();
      const result = await vm.agent.exec({
        argv: ["sh", "-c", "echo pyro-ok"],
        timeout_ms: 20_000,
      });
      const ms = Date.now() - started;
      const ok = result.exit_code === 0 && result.stdout.toString().trim() === "pyro-ok";
      capabilities.guest_exec = {
        ok,
        ms,
        detail: ok ? `exec round trip ${ms} ms` : `unexpected result: exit ${result.exit_code}`,
      };
      if (network) capabilities.network = await probeGuestNetwork(vm.agent);
    } finally {
      await vm.destroy();
    }
  } catch (error) {
    const message = isPyroError(error) ? error.message : String(error);
    capabilities.boot = { ok: false, ms: null, detail: message };
    capabilities.guest_exec = { ok: false, ms: null, detail: "no guest to run in" };
    if (network)
      capabilities.network = {
        ...capabilities.network,
        ok: false,
        detail: "no guest to try it in",
      };
  }
}

async function readiness(
  paths: PyroPaths,
  cache: EnvironmentCache,
  environment: string,
  qemu: QemuInfo | undefined,
  network: boolean,
): Promise<Readiness> {
  const fix = `run \`pyro prepare ${environment}${network ? " --network" : ""}\``;
  if ((await cache.state(environment)) !== "installed") {
    return {
      environment,
      network,
      readiness: "cold",
      reason: `${environment} is not built yet`,
      changed: [],
      fix,
    };
  }
  if (!qemu)
    return {
      environment,
      network,
      readiness: "cold",
      reason: "QEMU is missing",
      changed: [],
      fix: SETUP_HINT,
    };
  const warm = new WarmImages(paths, cache);
  const shape = { environment, vcpus: DEFAULTS.vcpuCount, memMib: DEFAULTS.memMib, network };
  const { key } = await warm.currentKeyFor(shape, qemu);
  const state = await warm.state(key);
  if (state.state === "warm")
    return { environment, network, readiness: "warm", reason: null, changed: [], fix: null };
  return {
    environment,
    network,
    readiness: state.state,
    reason: state.reason,
    changed: state.state === "stale" ? state.changed : [],
    fix,
  };
}

function readOsRelease(): string {
  try {
    return (
      /^PRETTY_NAME="?([^"\n]*)"?/m.exec(fs.readFileSync("/etc/os-release", "utf8"))?.[1] ?? ""
    );
  } catch {
    return "";
  }
}
