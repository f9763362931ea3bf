/**
 * A supervisor in standby mode (standby.ts): it restores the slot's warm
 * snapshot, runs a few commands so an emulated guest has translated its hot
 * paths, then waits until a workspace takes the VM over (and from then on
 * serves that workspace like any supervisor), the idle timeout passes, or
 * SIGTERM. Only a warm restore is worth keeping: with no valid snapshot there
 * is no standby.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import {
  ensurePrivateDir,
  readJsonFile,
  writeFileAtomic,
  type PyroPaths,
} from "../config/paths.js";
import { ChannelServer, type Handler } from "../protocol/channel-server.js";
import type { AgentClient } from "../protocol/client.js";
import { OpError, WireCodes } from "../protocol/errors.js";
import { withLock } from "../util/lock.js";
import { processAlive } from "../util/procs.js";
import type { MicroVm } from "../vm/machine.js";
import { launchVm } from "../boot/launch.js";
import { toShellArgv } from "../protocol/command.js";
import {
  liveStandby,
  slotDir,
  standbyFiles,
  standbyIdleSeconds,
  type StandbyRecord,
  type StandbySlot,
} from "./standby-pool.js";
import { standbyServes, WorkspaceStore } from "../records/store.js";
import {
  guestHostname,
  markStarted,
  serveWorkspace,
  supervisorLaunchContext,
} from "./workspace-supervisor.js";

export async function runStandby(paths: PyroPaths, slot: StandbySlot): Promise<void> {
  const dir = ensurePrivateDir(slotDir(paths, slot));
  const files = standbyFiles(dir);
  const started = new Date().toISOString();
  const record: StandbyRecord = {
    environment: slot.environment,
    vcpu_count: slot.vcpus,
    mem_mib: slot.memMib,
    network: slot.network,
    supervisor_pid: process.pid,
    qemu_pid: null,
    state: "starting",
    key: null,
    started_at: started,
    ready_at: null,
    idle_seconds: standbyIdleSeconds(),
  };
  const write = () => writeFileAtomic(files.record, `${JSON.stringify(record, null, 2)}\n`);
  // One standby per slot: the first to find none alive under the lock is it.
  const mine = await withLock(
    files.lock,
    async () => {
      if (liveStandby(paths, slot)) return false;
      write();
      return true;
    },
    { timeoutMs: 10_000, what: "the standby lock" },
  );
  if (!mine) return;
  removeDeadDisks(files.disks);
  const disk = path.join(ensurePrivateDir(files.disks), `${process.pid}.qcow2`);
  const retire = () => {
    const current = readJsonFile<StandbyRecord>(files.record);
    if (current?.supervisor_pid === process.pid) fs.rmSync(files.record, { force: true });
    fs.rmSync(files.socket, { force: true });
  };

  let vm: MicroVm;
  let accel: string;
  try {
    const launched = await launchVm(supervisorLaunchContext(paths), {
      environment: slot.environment,
      vcpus: slot.vcpus,
      memMib: slot.memMib,
      ephemeral: true,
      disk,
      warm: true,
      warmOnly: true,
      standby: true,
      hostname: "pyro",
      ...(slot.network ? { network: { allowHostPorts: [] } } : {}),
    });
    vm = launched.vm;
    accel = launched.accel.accel;
    if (!launched.warmKey) {
      await vm.destroy();
      throw new Error("the restored VM has no warm key");
    }
    record.key = launched.warmKey;
    record.qemu_pid = vm.qemuPid ?? null;
    await warmUpStandby(vm.agent);
  } catch (error) {
    process.stderr.write(`pyro standby: ${(error as Error).message}\n`);
    retire();
    fs.rmSync(disk, { force: true });
    return;
  }

  let claimed = false;
  // Created now so shutdown can close it; connections are handled by onClaim below.
  const server = net.createServer((socket) => onClaim(socket));
  const shutdown = async () => {
    if (claimed) return;
    claimed = true;
    server.close();
    retire();
    await vm.destroy();
    fs.rmSync(disk, { force: true });
    process.exit(0);
  };
  const idle = setTimeout(() => void shutdown(), record.idle_seconds * 1000);
  const onTerm = () => void shutdown();
  process.on("SIGTERM", onTerm);
  void vm.waitForExit().then(() => void shutdown());

  /** `claimerGone`: the claimer gave up waiting (it starts the workspace its own way then). */
  const takeOver = async (id: string, claimerGone: () => boolean) => {
    const claimStart = Date.now();
    const store = new WorkspaceStore(paths);
    const workspace = store.readRaw(id);
    if (
      !workspace ||
      workspace.state !== "starting" ||
      workspace.environment !== slot.environment ||
      workspace.vcpu_count !== slot.vcpus ||
      workspace.mem_mib !== slot.memMib ||
      !standbyServes(slot, workspace)
    ) {
      throw new Error(
        `workspace ${id} is not a ${slotDir(paths, slot)} workspace waiting to start`,
      );
    }
    const target = store.file(id, "disk.qcow2");
    if (fs.existsSync(target)) throw new Error(`workspace ${id} has a disk already`);
    // The workspace's own identity: its hostname, fresh entropy, the time now.
    await vm.agent.request("refresh", {
      time_ms: Date.now(),
      entropy: randomBytes(64).toString("base64"),
      hostname: guestHostname(id),
    });
    if (claimerGone()) throw new Error("the claimer gave up waiting");
    // A second name for the disk: QEMU keeps the first, which goes when the VM does.
    fs.linkSync(disk, target);
    // Found by the workspace id from now on, like any supervisor (service.killProcesses).
    process.title = `pyro supervisor.js ${id}`;
    try {
      vm.assignWorkspace(id);
      await markStarted(store, id, vm, {
        accel,
        kind: "warm",
        note: "took over a standby VM",
        bootMs: Date.now() - claimStart,
      });
      await serveWorkspace(paths, id, vm, () => fs.rmSync(disk, { force: true }));
    } catch (error) {
      // The claimer starts the workspace its own way: leave it no half-taken disk.
      fs.rmSync(target, { force: true });
      throw error;
    }
  };

  /** `pyro.claim` over the framed protocol; a claimer that hangs up has given up waiting. */
  const claim: Handler = async (args, ctx, hooks) => {
    let gone = false;
    hooks.onCancel = () => (gone = true);
    const id = args.workspace_id;
    if (typeof id !== "string" || !/^(ws|vm)_[0-9a-f]+$/.test(id))
      throw new OpError(WireCodes.BadArgs, "pyro.claim needs a workspace id");
    if (claimed) throw new OpError(WireCodes.ClaimRefused, "taken");
    claimed = true;
    clearTimeout(idle);
    process.off("SIGTERM", onTerm);
    server.close();
    retire();
    try {
      await takeOver(id, () => gone);
    } catch (error) {
      ctx.endAfterResponse(() => {
        void vm.destroy().then(() => {
          fs.rmSync(disk, { force: true });
          process.exit(0);
        });
      });
      throw new OpError(WireCodes.ClaimRefused, (error as Error).message);
    }
    return { claimed: true };
  };
  const onClaim = (socket: net.Socket) => {
    socket.on("error", () => {});
    const channels = new ChannelServer(socket, socket, (op) =>
      op === "pyro.claim" ? claim : undefined,
    );
    channels.on("fatal", () => socket.destroy());
    channels.start();
  };
  fs.rmSync(files.socket, { force: true });
  await new Promise<void>((resolve) => server.listen(files.socket, resolve));
  fs.chmodSync(files.socket, 0o600);
  record.state = "ready";
  record.ready_at = new Date().toISOString();
  write();
}

/** What a first command runs, run once so an emulated guest has translated it already. */
async function warmUpStandby(agent: AgentClient): Promise<void> {
  for (let i = 0; i < 2; i++) {
    await agent.exec({ argv: toShellArgv("true"), cwd: "/tmp", timeout_ms: 60_000 });
  }
  await agent.listDir("/tmp", { scope: "/tmp" });
}

/** Disks of standbys whose supervisor died without cleaning up (workspaces keep their own link). */
function removeDeadDisks(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const name of fs.readdirSync(dir)) {
    const pid = Number(name.split(".")[0]);
    if (!processAlive(pid)) fs.rmSync(path.join(dir, name), { force: true });
  }
}
