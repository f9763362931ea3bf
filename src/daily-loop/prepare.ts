/**
 * `pyro prepare`: set the machine up once so later creates are fast. Builds
 * the environment if needed, boots it with its RAM in a file, runs a
 * workspace's first operations once (so the warm image holds a guest whose
 * code is loaded and caches filled), saves a warm image, and proves the
 * loop with a throwaway workspace. Idempotent: on a warm machine it returns
 * at once and says so.
 */
import fs from "node:fs";
import { Readable } from "node:stream";
import type { AgentClient } from "../protocol/client.js";
import { DEFAULT_ENVIRONMENT, findCatalogEntry } from "../environments/catalog.js";
import { launchVm, requireQemu, type LaunchContext } from "../boot/launch.js";
import { toShellArgv } from "../protocol/command.js";
import { WORKSPACE_ROOT, type WorkspaceContext } from "../workspaces/context.js";
import { exec } from "../workspaces/exec.js";
import { create, deleteWorkspace } from "../workspaces/lifecycle.js";
import { reset } from "../workspaces/snapshots.js";
import { spawnStandby, stopSlotStandby } from "../supervisor/standby-pool.js";
import { WarmImages, warmImageFiles, type WarmState } from "../boot/warm-image.js";
import { DEFAULTS } from "../limits.js";
import { ErrorCodes, PyroError } from "../errors.js";

export interface PrepareOptions {
  environment?: string;
  force?: boolean;
  /** Prepare the networked variant (what creates with a network policy restore from). */
  network?: boolean;
}

export interface PrepareResult {
  environment: string;
  /** The networked variant (`--network`): serves creates with policy egress or egress+published-ports. */
  network: boolean;
  /** "prepared" (a warm image was made now) or "already_warm" (nothing to do). */
  status: "prepared" | "already_warm";
  /** Why a new snapshot was needed. */
  reason: string | null;
  accel: "kvm" | "tcg";
  vcpu_count: number;
  mem_mib: number;
  snapshot_bytes: number;
  cold_boot_ms: number | null;
  duration_ms: number;
  /** The throwaway create → exec → reset → exec → delete that proves the warm image works. */
  proof: {
    create_ms: number;
    boot_kind: "warm" | "cold";
    exec_ms: number;
    reset_ms: number;
    reset_boot_kind: "warm" | "cold";
    delete_ms: number;
  } | null;
}

export async function prepare(
  workspaces: WorkspaceContext,
  options: PrepareOptions = {},
): Promise<PrepareResult> {
  const ctx: LaunchContext = workspaces.launch;
  const started = Date.now();
  const environment = options.environment ?? DEFAULT_ENVIRONMENT;
  findCatalogEntry(environment);
  const qemu = requireQemu(ctx.paths.hostCache);
  const network = options.network === true;
  const warm = new WarmImages(ctx.paths, ctx.cache);
  const slot = { environment, vcpus: DEFAULTS.vcpuCount, memMib: DEFAULTS.memMib, network };
  const { key, accel } = await warm.currentKeyFor(slot, qemu, ctx.progress);
  const before: WarmState = await warm.state(key);
  const base = {
    environment,
    network,
    accel: accel.accel,
    vcpu_count: DEFAULTS.vcpuCount,
    mem_mib: DEFAULTS.memMib,
  };
  if (before.state === "warm" && !options.force) {
    // The daily loop starts here: have a standby VM ready for the first create.
    spawnStandby(ctx.paths, slot);
    return {
      ...base,
      status: "already_warm",
      reason: null,
      snapshot_bytes: before.manifest.allocated_bytes,
      cold_boot_ms: null,
      duration_ms: Date.now() - started,
      proof: null,
    };
  }
  const reason = options.force ? "--force" : before.state === "warm" ? null : before.reason;
  ctx.progress(`preparing ${environment}${network ? " (network)" : ""}: ${reason}`);
  stopSlotStandby(ctx.paths, slot);
  let coldBootMs = 0;
  const manifest = await warm.store(
    key,
    async (dir) => {
      const files = warmImageFiles(dir);
      const { vm } = await launchVm(ctx, {
        environment,
        vcpus: DEFAULTS.vcpuCount,
        memMib: DEFAULTS.memMib,
        ephemeral: true,
        disk: files.disk,
        memoryFile: files.memory,
        ...(network ? { network: { allowHostPorts: [] } } : {}),
      });
      coldBootMs = vm.bootMs;
      try {
        ctx.progress("warming the guest up");
        await warmUp(vm.agent);
        ctx.progress("saving the warm image");
        await vm.agent.call("sync", {});
        await vm.saveState(files.deviceState);
      } finally {
        await vm.destroy();
      }
      for (const file of Object.values(files)) {
        if (!fs.existsSync(file))
          throw new PyroError(ErrorCodes.VmBootFailed, `the prepared ${file} is missing`);
      }
    },
    started,
  );

  ctx.progress("proving the loop: create → exec → reset → exec → delete");
  const t0 = Date.now();
  const ws = await create(workspaces, {
    environment,
    labels: { "pyro.prepare": "proof" },
    ...(network ? { networkPolicy: "egress" } : {}),
  });
  const createMs = Date.now() - t0;
  let execMs = 0;
  let resetMs = 0;
  let resetBootKind: "warm" | "cold" = "cold";
  let deleteMs = 0;
  const proofExec = async () => {
    const result = await exec(workspaces, ws.id, "true");
    if (result.exit_code !== 0)
      throw new PyroError(
        ErrorCodes.GuestError,
        `the proof command failed with exit ${result.exit_code}`,
        { fix: { kind: "run_doctor" } },
      );
  };
  try {
    const t1 = Date.now();
    await proofExec();
    execMs = Date.now() - t1;
    const t2 = Date.now();
    const again = await reset(workspaces, ws.id);
    resetMs = Date.now() - t2;
    resetBootKind = again.boot_kind ?? "cold";
    await proofExec();
  } finally {
    const t3 = Date.now();
    await deleteWorkspace(workspaces, ws.id);
    deleteMs = Date.now() - t3;
  }
  return {
    ...base,
    status: "prepared",
    reason,
    snapshot_bytes: manifest.allocated_bytes,
    cold_boot_ms: coldBootMs,
    duration_ms: Date.now() - started,
    proof: {
      create_ms: createMs,
      boot_kind: ws.boot_kind ?? "cold",
      exec_ms: execMs,
      reset_ms: resetMs,
      reset_boot_kind: resetBootKind,
      delete_ms: deleteMs,
    },
  };
}

/**
 * What a workspace's first minutes do, done once before the warm image: the
 * agent's code paths run (and are compiled), its shell module is loaded, and
 * the guest's page cache holds the shell, tar and busybox. A restore then
 * skips that work.
 */
async function warmUp(agent: AgentClient): Promise<void> {
  const exec = (command: string) =>
    agent.exec({ argv: toShellArgv(command), cwd: WORKSPACE_ROOT, timeout_ms: 60_000 });
  for (let i = 0; i < 3; i++) await exec("true");
  await exec("ls -la >/dev/null; git --version >/dev/null 2>&1 || true");
  await agent.tarIn(WORKSPACE_ROOT, Readable.from([Buffer.alloc(1024)]), WORKSPACE_ROOT);
  await agent.tarOut(WORKSPACE_ROOT, () => {}, WORKSPACE_ROOT);
  await agent.listDir(WORKSPACE_ROOT, { scope: WORKSPACE_ROOT });
  const probe = "/tmp/.pyro-warm-up";
  await agent.writeFile(probe, Buffer.from("warm\n"));
  await agent.readFile(probe, 1024);
  await agent.call("remove", { path: probe });
  // The shell module (a PTY and a terminal emulator, ~1.5 s to load under
  // emulation) loads on a workspace's first shell: load it and run it now.
  const shell = "pyro-warm-up";
  await agent.request("shell_open", { id: shell, cwd: WORKSPACE_ROOT });
  await agent.shellRead({ id: shell, plain: true, wait_for_idle_ms: 100 });
  await agent.request("shell_write", { id: shell, input: "unset HISTFILE; exit\n" });
  await agent.request("shell_close", { id: shell });
  await agent.request("refresh", { time_ms: Date.now() });
}
