/**
 * Everything needed to get from "an environment name" to "a booted VM whose
 * agent answers": host checks, the environment and runtime disk from the
 * cache (built if missing), the accelerator verdict, the running-VM limit.
 */
import { trace } from "../util/trace.js";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ensurePrivateDir, type PyroPaths } from "../config/paths.js";
import type { EnvironmentCache, ResolvedEnvironment } from "../environments/cache.js";
import { findCatalogEntry } from "../environments/catalog.js";
import { ErrorCodes, PyroError } from "../errors.js";
import { requireHostTools } from "../host/requirements.js";
import type { ProgressFn } from "../util/progress.js";
import { chooseAccel, type AccelDecision } from "../vm/accel.js";
import { MicroVm } from "../vm/machine.js";
import { findQemu, type GuestMemory, type QemuInfo } from "../vm/qemu.js";
import { liveRecords, reapOrphans } from "../vm/registry.js";
import { withLock } from "../util/lock.js";
import { processAlive } from "../util/procs.js";
import { WorkspaceStore } from "../records/store.js";
import { WarmImages, type WarmKey } from "./warm-image.js";
import { BOUNDS } from "../limits.js";

export interface LaunchContext {
  paths: PyroPaths;
  cache: EnvironmentCache;
  progress: ProgressFn;
  maxRunning: number;
}

export interface LaunchRequest {
  environment: string;
  vcpus: number;
  memMib: number;
  ephemeral: boolean;
  /** Persistent root disk (workspaces); see BootOptions.disk. */
  disk?: string;
  /** Set when the VM belongs to a workspace (its slot is reserved by the workspace record). */
  workspaceId?: string;
  /** Restore a warm image into the new `disk` when a valid one exists (otherwise boot cold). */
  warm?: boolean;
  /** The guest's hostname. */
  hostname?: string;
  /** Resume this memory snapshot on the existing `disk` (a fork); a cold boot of that disk if it fails. */
  restoreFrom?: string;
  /** With `restoreFrom` as device state alone: RAM is `base` with the pages of `file` written over it. */
  restoreDelta?: { file: string; base: string };
  /** Keep guest RAM in this file (shared mapping): the VM a warm image is made from. */
  memoryFile?: string;
  /** A standby VM (standby.ts): counted by no limit until a workspace takes it. */
  standby?: boolean;
  /** With `warm`: fail rather than boot cold (a standby is only worth it restored). */
  warmOnly?: boolean;
  /** A network device (any policy but "off"); see BootOptions.network. */
  network?: { allowHostPorts: number[] };
}

export interface Launched {
  vm: MicroVm;
  environment: ResolvedEnvironment;
  accel: AccelDecision;
  /** How the VM came up, and for a cold boot when a warm one was wanted, why. */
  boot: { kind: "warm" | "cold"; reason: string | null };
  /** The key of the warm image it was restored from, if it was. */
  warmKey?: WarmKey;
  /** The environment or the guest runtime was not cached: this launch built or fetched it first. */
  built: boolean;
}

/** QEMU, or an error naming the fix. `hostCache` remembers its version between processes. */
export function requireQemu(hostCache?: string): QemuInfo {
  requireHostTools(["qemu-system-x86_64", "qemu-img"]);
  const qemu = findQemu(hostCache);
  if (!qemu) {
    throw new PyroError(ErrorCodes.HostRequirementMissing, "qemu-system-x86_64 does not run", {
      fix: { kind: "run_setup" },
    });
  }
  return qemu;
}

export function validateResources(vcpus: number, memMib: number): void {
  const { vcpuCount, memMib: mem } = BOUNDS;
  if (!Number.isInteger(vcpus) || vcpus < vcpuCount.min || vcpus > vcpuCount.max) {
    throw new PyroError(
      ErrorCodes.UsageError,
      `vcpu count must be an integer from ${vcpuCount.min} to ${vcpuCount.max}, got ${vcpus}`,
    );
  }
  if (!Number.isInteger(memMib) || memMib < mem.min || memMib > mem.max) {
    throw new PyroError(
      ErrorCodes.UsageError,
      `memory must be an integer from ${mem.min} to ${mem.max} MiB, got ${memMib}`,
    );
  }
}

/** Boot timeout: generous under TCG, where a cold boot takes tens of seconds on a busy host. */
export function bootTimeoutMs(accel: AccelDecision): number {
  const override = Number(process.env.PYRO_BOOT_TIMEOUT_SECONDS);
  if (Number.isFinite(override) && override > 0) return override * 1000;
  return accel.accel === "kvm" ? 60_000 : 240_000;
}

export async function launchVm(ctx: LaunchContext, request: LaunchRequest): Promise<Launched> {
  findCatalogEntry(request.environment);
  validateResources(request.vcpus, request.memMib);
  const qemu = requireQemu(ctx.paths.hostCache);
  if (request.network) requireHostTools(["socat"]);
  reapOrphans(ctx.paths.vms);
  // Workspace VMs are counted through their workspace record, reserved by whoever starts them.
  const release =
    request.workspaceId || request.standby
      ? () => {}
      : await reserveSlot(ctx, "a one-shot VM", claimFile(ctx.paths));
  try {
    const environment = await ctx.cache.ensure(request.environment, ctx.progress);
    const runtime = await ctx.cache.ensureRuntime(ctx.progress);
    const built = environment.built === true || runtime.built === true;
    const images = { kernel: environment.kernel, initrd: environment.initramfs };
    trace("launch: environment verified");
    const accel = await chooseAccel(ctx.paths.hostCache, qemu, images);
    const boot = (restoreFrom?: string, memory?: GuestMemory, memoryDelta?: string) =>
      MicroVm.boot({
        vmsDir: ctx.paths.vms,
        qemuBinary: qemu.binary,
        images: { ...images, rootBase: environment.rootfs, runtimeDisk: runtime.image },
        accel: accel.accel,
        vcpus: request.vcpus,
        memMib: request.memMib,
        memory:
          memory ??
          (request.memoryFile
            ? { kind: "file", path: request.memoryFile, shared: true }
            : { kind: "anonymous" }),
        bootTimeoutMs: bootTimeoutMs(accel),
        ephemeral: request.ephemeral,
        disk: request.disk,
        workspaceId: request.workspaceId,
        standby: request.standby,
        restoreFrom,
        ...(memoryDelta ? { memoryDelta } : {}),
        hostname: request.hostname,
        ...(request.network ? { network: request.network } : {}),
        progress: ctx.progress,
      });
    const restored = async (
      from: string,
      memory?: GuestMemory,
      delta?: string,
    ): Promise<Launched> => ({
      vm: await boot(from, memory, delta),
      environment,
      accel,
      boot: { kind: "warm", reason: null },
      built,
    });
    let reason: string | null = null;
    if (
      request.restoreFrom &&
      request.disk &&
      fs.existsSync(request.disk) &&
      fs.existsSync(request.restoreFrom)
    ) {
      const delta = request.restoreDelta;
      // A delta's pages go over the RAM file they were taken against (vm/fork-copy.ts).
      const memory: GuestMemory | undefined = delta && {
        kind: "file",
        path: delta.base,
        shared: false,
      };
      try {
        return await restored(request.restoreFrom, memory, delta?.file);
      } catch (error) {
        reason = `the memory copy could not be restored (${firstLine(error)})`;
      }
    } else if (request.warm && request.disk && !fs.existsSync(request.disk)) {
      const warm = new WarmImages(ctx.paths, ctx.cache);
      const shape = {
        environment: request.environment,
        vcpus: request.vcpus,
        memMib: request.memMib,
        network: request.network !== undefined,
      };
      const state = await warm.state(await warm.currentKey(shape, qemu, accel));
      trace("launch: warm state known");
      if (state.state === "warm") {
        try {
          fs.copyFileSync(state.disk, request.disk);
          fs.chmodSync(request.disk, 0o600);
          const launched = await restored(state.deviceState, {
            kind: "file",
            path: state.memory,
            shared: false,
          });
          return { ...launched, warmKey: state.manifest.key };
        } catch (error) {
          // QEMU refused the warm image (or it broke mid-restore): never fail a create for it.
          fs.rmSync(request.disk, { force: true });
          reason = `the warm image could not be restored (${firstLine(error)})`;
        }
      } else {
        reason = state.reason;
      }
      if (request.warmOnly) throw new Error(`no warm restore: ${reason}`);
      const prepare = `pyro prepare ${request.environment}${request.network ? " --network" : ""}`;
      ctx.progress(`cold boot: ${reason}; \`${prepare}\` makes this fast`);
    }
    return { vm: await boot(), environment, accel, boot: { kind: "cold", reason }, built };
  } finally {
    release();
  }
}

interface RunningThing {
  kind: "vm" | "workspace";
  id: string;
  name: string | null;
}

/** What counts against the running limit: one-shot VMs (booted or booting) and live workspaces. */
export function runningThings(paths: PyroPaths): RunningThing[] {
  const things: RunningThing[] = [];
  for (const record of liveRecords(paths.vms)) {
    if (!record.workspace_id && !record.standby)
      things.push({ kind: "vm", id: record.id, name: null });
  }
  for (const claim of liveClaims(paths)) things.push({ kind: "vm", id: claim, name: null });
  for (const ws of new WorkspaceStore(paths).all()) {
    if (ws.state === "starting" || ws.state === "started")
      things.push({ kind: "workspace", id: ws.id, name: ws.name });
  }
  return things;
}

/**
 * Check the running limit and reserve a slot atomically (under a global
 * lock), so two launches at once cannot both take the last slot. `reserve`
 * makes the reservation visible to the next count (a claim file, or a
 * workspace record in state "starting"); the returned function releases a
 * claim once the VM's own record counts instead.
 */
export async function reserveSlot(
  ctx: LaunchContext,
  what: string,
  reserve: (() => void) | { claim: string },
): Promise<() => void> {
  ensurePrivateDir(ctx.paths.locks);
  return withLock(
    path.join(ctx.paths.locks, "launch.lock"),
    async () => {
      const running = runningThings(ctx.paths);
      if (running.length >= ctx.maxRunning) {
        const names = running.map((t) => (t.name ? `${t.id} (${t.name})` : t.id)).join(", ");
        throw new PyroError(
          ErrorCodes.LimitExceeded,
          `cannot start ${what}: ${running.length} already running (limit ${ctx.maxRunning}): ${names}`,
          { fix: { kind: "free_slot", running: running.map((t) => t.name ?? t.id) } },
        );
      }
      if (typeof reserve === "function") {
        reserve();
        return () => {};
      }
      ensurePrivateDir(path.dirname(reserve.claim));
      fs.writeFileSync(reserve.claim, String(process.pid), { mode: 0o600 });
      return () => fs.rmSync(reserve.claim, { force: true });
    },
    { timeoutMs: 60_000, what: "the launch lock" },
  );
}

function claimFile(paths: PyroPaths): { claim: string } {
  return {
    claim: path.join(paths.data, "claims", `${process.pid}-${randomBytes(4).toString("hex")}`),
  };
}

function liveClaims(paths: PyroPaths): string[] {
  const dir = path.join(paths.data, "claims");
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((name) => {
    if (processAlive(Number(name.split("-")[0]))) return true;
    fs.rmSync(path.join(dir, name), { force: true });
    return false;
  });
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}
