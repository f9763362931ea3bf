/**
 * The workspace supervisor: one small detached process per running workspace.
 * It owns QEMU (which dies with it) and the one agent connection, and serves
 * any number of clients (CLIs, SDKs, the MCP server) on an owner-only unix
 * socket speaking the same framed protocol as the agent. Client channels are
 * forwarded to agent channels, so every agent op works through it unchanged;
 * `pyro.*` ops are its own (stop).
 *
 * No global daemon: when the workspace stops, or its VM dies, the supervisor
 * records why and exits. A supervisor can also start as a standby
 * (standby-supervisor.ts) and become a workspace's when it takes the VM over.
 */
import { trace } from "../util/trace.js";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { PassThrough } from "node:stream";
import type { PyroPaths } from "../config/paths.js";
import { EnvironmentCache } from "../environments/cache.js";
import { ErrorCodes, PyroError, isPyroError, toPyroError, type Fix } from "../errors.js";
import type { AgentClient } from "../protocol/client.js";
import { ChannelServer, type Handler } from "../protocol/channel-server.js";
import { OpError, WireCodes, wireCode } from "../protocol/errors.js";
import type { MicroVm } from "../vm/machine.js";
import { saveForFork } from "../vm/fork-copy.js";
import { launchVm, type LaunchContext } from "../boot/launch.js";
import { endRuntime, vmNetwork, WorkspaceStore, type WorkspaceRecord } from "../records/store.js";
import { PublishedPortWatcher } from "./port-watcher.js";

/** Ops whose requests carry input frames from the client. */
const INPUT_OPS = new Set(["write_file", "tar_in"]);

export interface SupervisorReady {
  ok: boolean;
  error?: { code: string; message: string; hint?: string; fix?: Fix };
}

export async function runSupervisor(
  paths: PyroPaths,
  id: string,
  report: (ready: SupervisorReady) => void,
): Promise<void> {
  const store = new WorkspaceStore(paths);
  trace("supervisor: start");
  const record = store.readRaw(id);
  if (!record) throw new PyroError(ErrorCodes.WorkspaceNotFound, `workspace ${id} does not exist`);
  let vm: MicroVm;
  try {
    vm = await launchWorkspaceVm(paths, store, record);
  } catch (error) {
    const pyroError = toPyroError(error);
    await store
      .update(id, (r) => {
        r.state = "failed";
        r.failure_reason = pyroError.message;
        r.supervisor_pid = null;
      })
      .catch(() => {});
    const fix = pyroError.fix;
    report({ ok: false, error: { ...pyroError.toJSON(), ...(fix ? { fix } : {}) } });
    return;
  } finally {
    // A fork's memory copy is used once (it holds the guest's RAM, secrets included).
    for (const file of [record.restore_from, record.restore_delta])
      if (file) fs.rmSync(file, { force: true });
  }
  await serveWorkspace(paths, id, vm);
  report({ ok: true });
}

/**
 * Launch the VM of workspace `record` on its disk (restored from the warm
 * image onto a new disk when it has none, or from a fork's memory copy) and
 * record it started.
 */
async function launchWorkspaceVm(
  paths: PyroPaths,
  store: WorkspaceStore,
  record: WorkspaceRecord,
): Promise<MicroVm> {
  const id = record.id;
  const launched = await launchVm(supervisorLaunchContext(paths), {
    environment: record.environment,
    vcpus: record.vcpu_count,
    memMib: record.mem_mib,
    ephemeral: true,
    disk: store.file(id, "disk.qcow2"),
    workspaceId: id,
    warm: true,
    hostname: guestHostname(id),
    ...(record.restore_from ? { restoreFrom: record.restore_from } : {}),
    ...(record.restore_from && record.restore_delta && record.restore_base
      ? { restoreDelta: { file: record.restore_delta, base: record.restore_base } }
      : {}),
    network: vmNetwork(record),
  });
  trace("supervisor: vm ready");
  const fromDelta = record.restore_delta && launched.boot.kind === "warm";
  await markStarted(store, id, launched.vm, {
    accel: launched.accel.accel,
    kind: launched.boot.kind,
    note: fromDelta ? FORK_DELTA_NOTE : launched.boot.reason,
    bootMs: launched.vm.bootMs,
  });
  return launched.vm;
}

/** boot_note of a fork restored from its parent's changed pages (vm/fork-copy.ts). */
export const FORK_DELTA_NOTE = "restored from its parent's memory delta";

export function supervisorLaunchContext(paths: PyroPaths): LaunchContext {
  return {
    paths,
    cache: new EnvironmentCache(paths),
    progress: () => {},
    maxRunning: Number.MAX_SAFE_INTEGER,
  };
}

/** A workspace's guest hostname: its id, as a valid hostname. */
export function guestHostname(id: string): string {
  return id.replace(/_/g, "-");
}

export async function markStarted(
  store: WorkspaceStore,
  id: string,
  vm: MicroVm,
  boot: { accel: string; kind: "warm" | "cold"; note: string | null; bootMs: number },
): Promise<void> {
  await store.update(id, (r) => {
    r.state = "started";
    r.supervisor_pid = process.pid;
    r.qemu_pid = vm.qemuPid ?? null;
    r.failure_reason = null;
    r.boot_ms = boot.bootMs;
    r.accel = boot.accel as WorkspaceRecord["accel"];
    r.boot_kind = boot.kind;
    r.boot_note = boot.note;
    // A new QEMU forwards no ports; a guest restored from fork memory still runs
    // its services and shells (not when the restore fell back to a cold boot).
    r.published_ports = [];
    if (!(r.restore_from && boot.kind === "warm")) {
      r.services = [];
      endRuntime(r, "the workspace's VM restarted");
    }
    r.restore_from = null; // used once
    r.restore_delta = null;
    r.restore_base = null;
  });
}

/**
 * Serve workspace `id` on its control socket until it stops, its VM dies or
 * it expires. Resolves once the socket accepts clients. A reset replaces the
 * VM in place (a new one on a fresh disk) and serves on.
 * `onFirstVmGone` runs once the VM it was given is destroyed.
 */
export async function serveWorkspace(
  paths: PyroPaths,
  id: string,
  firstVm: MicroVm,
  onFirstVmGone: () => void = () => {},
): Promise<void> {
  const store = new WorkspaceStore(paths);
  const record = store.readRaw(id);
  const socketPath = store.file(id, "control.sock");
  const diskFile = store.file(id, "disk.qcow2");
  fs.rmSync(socketPath, { force: true });
  const clients = new Set<net.Socket>();
  let vm = firstVm;
  let watcher = new PublishedPortWatcher(store, id, vm);
  /** The reset under way, if any: a stop waits for it rather than race the new VM. */
  let replacement: Promise<unknown> | undefined;
  const retired = new WeakSet<MicroVm>();
  let vmGone = onFirstVmGone;
  /** Destroy a VM on purpose (its exit is then no failure). */
  const retire = async (old: MicroVm) => {
    retired.add(old);
    await old.destroy();
    vmGone();
    vmGone = () => {};
  };

  /** A reset: the VM goes, a new one comes up on a fresh disk (standby-less path). */
  const replaceVm = (): Promise<Record<string, unknown>> => {
    if (stopping || replacement)
      throw new OpError(WireCodes.Busy, "the workspace is stopping or resetting");
    const done = swapVm().finally(() => (replacement = undefined));
    replacement = done;
    return done;
  };
  const swapVm = async (): Promise<Record<string, unknown>> => {
    try {
      watcher.stop();
      await retire(vm);
      fs.rmSync(diskFile, { force: true });
      const current = store.readRaw(id);
      if (!current) throw new Error(`workspace ${id} was deleted`);
      vm = await launchWorkspaceVm(paths, store, current);
      watcher = new PublishedPortWatcher(store, id, vm);
      watchExit(vm);
      return { reset: true };
    } catch (error) {
      await finish("failed", `the reset could not start a new VM: ${toPyroError(error).message}`);
      throw error;
    }
  };

  const server = net.createServer((socket) =>
    serveClient(socket, () => vm.agent, clients, {
      stop: () => stop(),
      fork: (args) => {
        if (replacement) throw new OpError(WireCodes.Busy, "the workspace is resetting");
        return forkInto(vm, diskFile, args);
      },
      reset: () => replaceVm(),
      publish: async (hostPort, guestPort, service) => {
        await vm.forwardPort(hostPort, guestPort);
        watcher.track(hostPort, service);
      },
      unpublish: async (hostPort) => {
        await vm.unforwardPort(hostPort);
        watcher.untrack(hostPort);
      },
    }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);

  let stopping = false;
  const finish = async (state: "stopped" | "failed", reason: string | null) => {
    stopping = true;
    watcher.stop();
    server.close();
    for (const client of clients) client.destroy();
    await retire(vm);
    await store
      .update(id, (r) => {
        r.state = state;
        r.failure_reason = reason;
        r.supervisor_pid = null;
        r.qemu_pid = null;
        endRuntime(r, state === "stopped" ? "the workspace stopped" : "the VM died");
      })
      .catch(() => {}); // deleted meanwhile
    fs.rmSync(socketPath, { force: true });
  };

  /** Flush the guest's disk, then let QEMU quit cleanly. */
  const stop = async () => {
    await replacement?.catch(() => {});
    if (stopping) return;
    stopping = true;
    await vm.agent.call("sync", {}).catch(() => {});
    await finish("stopped", null);
  };

  /** A VM that dies on its own fails the workspace (one retired on purpose does not). */
  const watchExit = (watched: MicroVm) =>
    void watched.waitForExit().then(async (description) => {
      if (stopping || retired.has(watched)) return;
      await finish("failed", `the VM died: ${description}`);
      process.exit(0);
    });
  watchExit(vm);
  process.on("SIGTERM", () => void stop().then(() => process.exit(0)));
  scheduleExpiry(record?.expires_at ?? null, async () => {
    // An expired workspace goes away even if no pyro command runs to reap it.
    await stop();
    store.remove(id);
    process.exit(0);
  });
}

function scheduleExpiry(expiresAt: string | null, expire: () => Promise<void>): void {
  if (!expiresAt) return;
  const check = () => {
    const left = Date.parse(expiresAt) - Date.now();
    if (left <= 0) void expire();
    else setTimeout(check, Math.min(left, 2 ** 30)).unref();
  };
  check();
}

/** Forward one client's channels to agent channels; answer `pyro.*` ops here. */
interface SupervisorOps {
  stop(): Promise<void>;
  fork(args: Record<string, unknown>): Promise<Record<string, unknown>>;
  reset(): Promise<Record<string, unknown>>;
  publish(hostPort: number, guestPort: number, service: string): Promise<void>;
  unpublish(hostPort: number): Promise<void>;
}

/**
 * Copy the running VM for a fork: pause it, save its memory to `memory`
 * (device state alone plus the changed pages in `delta` when it can, see
 * vm/fork-copy.ts), copy its (now flushed) disk to `disk`, and let it run on.
 */
async function forkInto(
  vm: MicroVm,
  ownDisk: string,
  args: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const { memory, disk, delta } = args;
  const absolute = (value: unknown) => typeof value === "string" && path.isAbsolute(value);
  if (!absolute(memory) || !absolute(disk) || (delta !== undefined && !absolute(delta))) {
    throw new OpError(WireCodes.BadArgs, "pyro.fork needs absolute memory and disk paths");
  }
  trace("fork: sync");
  await vm.agent.call("sync", {});
  try {
    const copy = await saveForFork(vm, {
      state: memory as string,
      ...(delta ? { delta: delta as string } : {}),
    });
    trace(`fork: memory saved (${copy.delta ? `delta of ${copy.delta.pages} pages` : "full"})`);
    fs.copyFileSync(ownDisk, disk as string);
    trace("fork: disk copied");
    return { memory, disk, ...(copy.delta ? { delta: copy.delta } : {}) };
  } finally {
    await vm.resume();
  }
}

function portArg(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535)
    throw new OpError(WireCodes.BadArgs, `${name} must be a port from 1 to 65535`);
  return value;
}

/**
 * Serve one client: its channels are relayed to agent channels (errors keep
 * their wire code), and `pyro.*` ops are answered here. A client that goes
 * away abandons its commands: they are cancelled in the guest.
 */
function serveClient(
  socket: net.Socket,
  agent: () => AgentClient,
  clients: Set<net.Socket>,
  ops: SupervisorOps,
): void {
  clients.add(socket);
  socket.on("close", () => clients.delete(socket));
  const own: Record<string, Handler> = {
    "pyro.stop": async (_args, ctx) => {
      await ops.stop();
      ctx.endAfterResponse(() => process.exit(0));
      return { stopped: true };
    },
    "pyro.fork": async (args) => {
      try {
        return await ops.fork(args);
      } catch (error) {
        if (error instanceof OpError) throw error;
        throw new OpError(WireCodes.ForkFailed, toPyroError(error).message);
      }
    },
    "pyro.reset": async (_args, ctx) => {
      try {
        return await ops.reset();
      } catch (error) {
        if (error instanceof OpError) throw error;
        // The workspace failed with it: this supervisor goes once the error is out.
        ctx.endAfterResponse(() => process.exit(0));
        throw new OpError(WireCodes.ResetFailed, toPyroError(error).message);
      }
    },
    "pyro.publish": async (args) => {
      const hostPort = portArg(args.host_port, "host_port");
      const guestPort = portArg(args.guest_port, "guest_port");
      if (typeof args.service !== "string" || args.service === "")
        throw new OpError(WireCodes.BadArgs, "pyro.publish needs the service's name");
      try {
        await ops.publish(hostPort, guestPort, args.service);
      } catch (error) {
        throw new OpError(WireCodes.PublishFailed, toPyroError(error).message);
      }
      return { published: true };
    },
    "pyro.unpublish": async (args) => {
      try {
        await ops.unpublish(portArg(args.host_port, "host_port"));
      } catch (error) {
        throw new OpError(WireCodes.PublishFailed, toPyroError(error).message);
      }
      return { unpublished: true };
    },
  };
  const relay =
    (op: string): Handler =>
    async (args, ctx, hooks) => {
      const abort = new AbortController();
      const wantsInput = INPUT_OPS.has(op) || (op === "exec" && args.stdin === true);
      const input = wantsInput ? new PassThrough() : undefined;
      hooks.onData = (_stream, bytes) => input?.write(bytes);
      hooks.onEof = () => input?.end();
      hooks.onCancel = () => {
        abort.abort();
        input?.end();
      };
      try {
        return await agent().call(op, args, {
          input,
          signal: abort.signal,
          onData: (stream, bytes) => ctx.send(stream, bytes),
        });
      } catch (error) {
        const guestCode = isPyroError(error) ? error.details?.guest_code : undefined;
        const code =
          isPyroError(error) && error.code === ErrorCodes.VmDied ? WireCodes.VmDied : guestCode;
        throw new OpError(wireCode(code), toPyroError(error).message);
      }
    };
  const server = new ChannelServer(socket, socket, (op) =>
    Object.hasOwn(own, op) ? own[op] : op.startsWith("pyro.") ? undefined : relay(op),
  );
  server.on("fatal", () => socket.destroy());
  socket.on("error", () => {});
  server.start();
}
