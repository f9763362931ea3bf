/**
 * Everything needed to get from "an environment name" to "a booted VM whose
 * agent answers": host checks, the environment and runtime disk from the
 * cache (built if missing), the accelerator verdict, the running-VM limit.
 */
import type { PyroPaths } from "../config/paths.js";
import type { EnvironmentCache, ResolvedEnvironment } from "../environments/cache.js";
import { findCatalogEntry } from "../environments/catalog.js";
import { ErrorCodes, PyroError } from "../errors.js";
import { SETUP_HINT, requireHostTools } from "../host/requirements.js";
import type { ProgressFn } from "../util/progress.js";
import { chooseAccel, type AccelDecision } from "../vm/accel.js";
import { MicroVm } from "../vm/machine.js";
import { findQemu, type QemuInfo } from "../vm/qemu.js";
import { liveRecords, reapOrphans } from "../vm/registry.js";

export const DEFAULT_VCPUS = 1;
export const DEFAULT_MEM_MIB = 1024;
export const DEFAULT_MAX_RUNNING = 4;

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
}

export interface Launched {
  vm: MicroVm;
  environment: ResolvedEnvironment;
  accel: AccelDecision;
}

export function requireQemu(): QemuInfo {
  requireHostTools(["qemu-system-x86_64", "qemu-img"]);
  const qemu = findQemu();
  if (!qemu) {
    throw new PyroError(ErrorCodes.HostRequirementMissing, "qemu-system-x86_64 does not run", {
      hint: SETUP_HINT,
    });
  }
  return qemu;
}

export function validateResources(vcpus: number, memMib: number): void {
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > 64) {
    throw new PyroError(
      ErrorCodes.UsageError,
      `vcpu count must be an integer from 1 to 64, got ${vcpus}`,
    );
  }
  if (!Number.isInteger(memMib) || memMib < 256 || memMib > 262144) {
    throw new PyroError(
      ErrorCodes.UsageError,
      `memory must be an integer from 256 to 262144 MiB, got ${memMib}`,
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
  const qemu = requireQemu();
  reapOrphans(ctx.paths.vms);
  const running = liveRecords(ctx.paths.vms);
  if (running.length >= ctx.maxRunning) {
    throw new PyroError(
      ErrorCodes.LimitExceeded,
      `${running.length} VMs are already running (limit ${ctx.maxRunning}): ${running.map((r) => r.id).join(", ")}`,
      { hint: "stop or delete one of them, or raise the limit with PYRO_MAX_RUNNING" },
    );
  }
  const environment = await ctx.cache.ensure(request.environment, ctx.progress);
  const runtime = await ctx.cache.ensureRuntime(ctx.progress);
  const images = { kernel: environment.kernel, initrd: environment.initramfs };
  const accel = await chooseAccel(ctx.paths.hostCache, qemu, images);
  const vm = await MicroVm.boot({
    vmsDir: ctx.paths.vms,
    qemuBinary: qemu.binary,
    images: { ...images, rootBase: environment.rootfs, runtimeDisk: runtime.image },
    accel: accel.accel,
    vcpus: request.vcpus,
    memMib: request.memMib,
    bootTimeoutMs: bootTimeoutMs(accel),
    ephemeral: request.ephemeral,
    progress: ctx.progress,
  });
  return { vm, environment, accel };
}
