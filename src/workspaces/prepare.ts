/**
 * `pyro prepare`: set the machine up once so later creates are fast. Builds
 * the environment if needed, boots it, saves a warm snapshot, and proves the
 * loop with a throwaway workspace. Idempotent: on a warm machine it returns
 * at once and says so.
 */
import fs from "node:fs";
import path from "node:path";
import { DEFAULT_ENVIRONMENT, findCatalogEntry } from "../environments/catalog.js";
import { chooseAccel } from "../vm/accel.js";
import {
  DEFAULT_MEM_MIB,
  DEFAULT_VCPUS,
  launchVm,
  requireQemu,
  type LaunchContext,
} from "./launch.js";
import type { WorkspaceService } from "./service.js";
import { WarmSnapshots, type WarmState } from "./warm.js";

export interface PrepareOptions {
  environment?: string;
  force?: boolean;
}

export interface PrepareResult {
  environment: string;
  /** "prepared" (a snapshot was made now) or "already_warm" (nothing to do). */
  status: "prepared" | "already_warm";
  /** Why a new snapshot was needed. */
  reason: string | null;
  accel: "kvm" | "tcg";
  vcpu_count: number;
  mem_mib: number;
  snapshot_bytes: number;
  cold_boot_ms: number | null;
  duration_ms: number;
  /** The throwaway create → exec → delete that proves the snapshot works. */
  proof: {
    create_ms: number;
    boot_kind: "warm" | "cold";
    exec_ms: number;
    delete_ms: number;
  } | null;
}

export async function prepare(
  ctx: LaunchContext,
  workspaces: WorkspaceService,
  options: PrepareOptions = {},
): Promise<PrepareResult> {
  const started = Date.now();
  const environment = options.environment ?? DEFAULT_ENVIRONMENT;
  findCatalogEntry(environment);
  const qemu = requireQemu();
  const resolved = await ctx.cache.ensure(environment, ctx.progress);
  const accel = await chooseAccel(ctx.paths.hostCache, qemu, {
    kernel: resolved.kernel,
    initrd: resolved.initramfs,
  });
  const warm = new WarmSnapshots(ctx.paths, ctx.cache);
  const key = await warm.currentKey(environment, DEFAULT_VCPUS, DEFAULT_MEM_MIB, qemu, accel);
  const before: WarmState = await warm.state(key);
  const base = {
    environment,
    accel: accel.accel,
    vcpu_count: DEFAULT_VCPUS,
    mem_mib: DEFAULT_MEM_MIB,
  };
  if (before.state === "warm" && !options.force) {
    return {
      ...base,
      status: "already_warm",
      reason: null,
      snapshot_bytes: before.manifest.memory.size + before.manifest.disk.size,
      cold_boot_ms: null,
      duration_ms: Date.now() - started,
      proof: null,
    };
  }
  const reason = options.force ? "--force" : before.state === "warm" ? null : before.reason;
  ctx.progress(`preparing ${environment}: ${reason}`);
  let coldBootMs = 0;
  const manifest = await warm.store(
    key,
    async (dir) => {
      const disk = path.join(dir, "disk.qcow2");
      const { vm } = await launchVm(ctx, {
        environment,
        vcpus: DEFAULT_VCPUS,
        memMib: DEFAULT_MEM_MIB,
        ephemeral: true,
        disk,
      });
      coldBootMs = vm.bootMs;
      try {
        ctx.progress("saving the warm snapshot");
        await vm.agent.call("sync", {});
        await vm.snapshot(path.join(dir, "memory.bin"));
      } finally {
        await vm.destroy();
      }
      if (!fs.existsSync(disk)) throw new Error("the prepared disk is missing");
    },
    started,
  );

  ctx.progress("proving the loop: create → exec → delete");
  const t0 = Date.now();
  const ws = await workspaces.create({ environment, labels: { "pyro.prepare": "proof" } });
  const createMs = Date.now() - t0;
  let execMs = 0;
  let deleteMs = 0;
  try {
    const t1 = Date.now();
    const result = await workspaces.exec(ws.id, "true");
    execMs = Date.now() - t1;
    if (result.exit_code !== 0)
      throw new Error(`the proof command failed with exit ${result.exit_code}`);
  } finally {
    const t2 = Date.now();
    await workspaces.delete(ws.id);
    deleteMs = Date.now() - t2;
  }
  return {
    ...base,
    status: "prepared",
    reason,
    snapshot_bytes: manifest.memory.size + manifest.disk.size,
    cold_boot_ms: coldBootMs,
    duration_ms: Date.now() - started,
    proof: {
      create_ms: createMs,
      boot_kind: ws.boot_kind ?? "cold",
      exec_ms: execMs,
      delete_ms: deleteMs,
    },
  };
}
