/**
 * The workspace supervisor: one small detached process per running workspace.
 * It owns QEMU (which dies with it) and the one agent connection, and serves
 * any number of clients (CLIs, SDKs, the MCP server) on an owner-only unix
 * socket speaking the same framed protocol as the agent. Client channels are
 * forwarded to agent channels, so every agent op works through it unchanged;
 * `pyro.*` ops are its own (stop).
 *
 * No global daemon: when the workspace stops, or its VM dies, the supervisor
 * records why and exits.
 */
import { trace } from "../util/trace.js";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { PassThrough } from "node:stream";
import type { PyroPaths } from "../config/paths.js";
import { EnvironmentCache } from "../environments/cache.js";
import { isPyroError, toPyroError } from "../errors.js";
import type { AgentClient } from "../guest/client.js";
import {
  FrameDecoder,
  FrameKind,
  encodeDataFrame,
  encodeJsonFrame,
  parseJsonPayload,
  parseStreamPayload,
  type Frame,
} from "../protocol/frames.js";
import type { MicroVm } from "../vm/machine.js";
import { randomBytes } from "node:crypto";
import { ensurePrivateDir, writeFileAtomic } from "../config/paths.js";
import { withLock } from "../util/lock.js";
import { processAlive } from "../util/procs.js";
import { toShellArgv } from "./output.js";
import { launchVm, type LaunchContext } from "./launch.js";
import {
  liveStandby,
  slotDir,
  standbyFiles,
  standbyIdleSeconds,
  type StandbyRecord,
  type StandbySlot,
} from "./standby.js";
import { WorkspaceStore, type WorkspaceRecord } from "./store.js";

/** Ops whose requests carry input frames from the client. */
const INPUT_OPS = new Set(["write_file", "tar_in"]);

export interface SupervisorReady {
  ok: boolean;
  error?: { code: string; message: string; hint?: string };
}

export async function runSupervisor(
  paths: PyroPaths,
  id: string,
  report: (ready: SupervisorReady) => void,
): Promise<void> {
  const store = new WorkspaceStore(paths);
  trace("supervisor: start");
  const record = store.readRaw(id);
  if (!record) throw new Error(`workspace ${id} does not exist`);
  let vm: MicroVm;
  try {
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
    });
    vm = launched.vm;
    trace("supervisor: vm ready");
    if (record.restore_from) fs.rmSync(record.restore_from, { force: true });
    await markStarted(store, id, vm, {
      accel: launched.accel.accel,
      kind: launched.boot.kind,
      note: launched.boot.reason,
      bootMs: vm.bootMs,
    });
  } catch (error) {
    const pyroError = toPyroError(error);
    await store
      .update(id, (r) => {
        r.state = "failed";
        r.failure_reason = pyroError.message;
        r.supervisor_pid = null;
      })
      .catch(() => {});
    report({ ok: false, error: pyroError.toJSON() });
    return;
  }
  await serveWorkspace(paths, id, vm);
  report({ ok: true });
}

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
    r.restore_from = null; // used once
  });
}

/**
 * Serve workspace `id` on its control socket until it stops, its VM dies or
 * it expires. Resolves once the socket accepts clients.
 */
export async function serveWorkspace(
  paths: PyroPaths,
  id: string,
  vm: MicroVm,
  onExit: () => void = () => {},
): Promise<void> {
  const store = new WorkspaceStore(paths);
  const record = store.readRaw(id);
  const socketPath = store.file(id, "control.sock");
  fs.rmSync(socketPath, { force: true });
  const clients = new Set<net.Socket>();
  const server = net.createServer((socket) =>
    serveClient(socket, vm.agent, clients, {
      stop: () => stop(),
      fork: (args) => forkInto(vm, store.file(id, "disk.qcow2"), args),
    }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);

  let stopping = false;
  const finish = async (state: "stopped" | "failed", reason: string | null) => {
    server.close();
    for (const client of clients) client.destroy();
    await vm.destroy();
    onExit();
    await store
      .update(id, (r) => {
        r.state = state;
        r.failure_reason = reason;
        r.supervisor_pid = null;
        r.qemu_pid = null;
      })
      .catch(() => {}); // deleted meanwhile
    fs.rmSync(socketPath, { force: true });
  };

  /** Flush the guest's disk, then let QEMU quit cleanly. */
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await vm.agent.call("sync", {}).catch(() => {});
    await finish("stopped", null);
  };

  vm.waitForExit().then(async (description) => {
    if (stopping) return;
    stopping = true;
    await finish("failed", `the VM died: ${description}`);
    process.exit(0);
  });
  process.on("SIGTERM", () => void stop().then(() => process.exit(0)));
  scheduleExpiry(record?.expires_at ?? null, async () => {
    // An expired workspace goes away even if no pyro command runs to reap it.
    await stop();
    store.remove(id);
    process.exit(0);
  });
}

/**
 * Standby mode (standby.ts): restore the slot's warm snapshot, run a few
 * commands so the guest's hot paths are translated, then wait until a
 * workspace takes the VM over (and serve that workspace from then on), the
 * idle timeout passes, or SIGTERM. Only a warm restore is worth keeping: if
 * the snapshot is missing or stale, no standby.
 */
export async function runStandby(paths: PyroPaths, slot: StandbySlot): Promise<void> {
  const dir = ensurePrivateDir(slotDir(paths, slot));
  const files = standbyFiles(dir);
  const started = new Date().toISOString();
  const record: StandbyRecord = {
    environment: slot.environment,
    vcpu_count: slot.vcpus,
    mem_mib: slot.memMib,
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
    const current = readStandbyPid(files.record);
    if (current === process.pid) fs.rmSync(files.record, { force: true });
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

  const takeOver = async (id: string) => {
    const claimStart = Date.now();
    const store = new WorkspaceStore(paths);
    const workspace = store.readRaw(id);
    if (
      !workspace ||
      workspace.state !== "starting" ||
      workspace.environment !== slot.environment ||
      workspace.vcpu_count !== slot.vcpus ||
      workspace.mem_mib !== slot.memMib
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

  const onClaim = (socket: net.Socket) => {
    let buffer = "";
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      const newline = buffer.indexOf("\n");
      if (newline === -1 || buffer.length > 4096) return;
      const reply = (answer: object) => socket.end(`${JSON.stringify(answer)}\n`);
      let id: unknown;
      try {
        id = (JSON.parse(buffer.slice(0, newline)) as { claim?: unknown }).claim;
      } catch {
        id = undefined;
      }
      if (typeof id !== "string" || !/^ws_[0-9a-f]+$/.test(id))
        return reply({ ok: false, error: "bad claim" });
      if (claimed) return reply({ ok: false, error: "taken" });
      claimed = true;
      clearTimeout(idle);
      process.off("SIGTERM", onTerm);
      server.close();
      retire();
      takeOver(id).then(
        () => reply({ ok: true }),
        async (error: unknown) => {
          reply({ ok: false, error: (error as Error).message });
          await vm.destroy();
          fs.rmSync(disk, { force: true });
          process.exit(0);
        },
      );
    });
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

function readStandbyPid(file: string): number | undefined {
  try {
    return (JSON.parse(fs.readFileSync(file, "utf8")) as StandbyRecord).supervisor_pid;
  } catch {
    return undefined;
  }
}

/** Disks of standbys whose supervisor died without cleaning up (workspaces keep their own link). */
function removeDeadDisks(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const name of fs.readdirSync(dir)) {
    const pid = Number(name.split(".")[0]);
    if (!processAlive(pid)) fs.rmSync(path.join(dir, name), { force: true });
  }
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
}

/**
 * Copy the running VM for a fork: pause it, save its memory to `memory`,
 * copy its (now flushed) disk to `disk`, and let it run on.
 */
async function forkInto(
  vm: MicroVm,
  ownDisk: string,
  args: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const memory = args.memory;
  const disk = args.disk;
  if (
    typeof memory !== "string" ||
    typeof disk !== "string" ||
    !path.isAbsolute(memory) ||
    !path.isAbsolute(disk)
  ) {
    throw new Error("pyro.fork needs absolute memory and disk paths");
  }
  await vm.agent.call("sync", {});
  try {
    await vm.snapshot(memory);
    fs.copyFileSync(ownDisk, disk);
  } finally {
    await vm.resume();
  }
  return { memory, disk };
}

function serveClient(
  socket: net.Socket,
  agent: AgentClient,
  clients: Set<net.Socket>,
  ops: SupervisorOps,
): void {
  clients.add(socket);
  const decoder = new FrameDecoder();
  const open = new Map<number, { input?: PassThrough; abort: AbortController }>();
  const send = (frame: Buffer) => {
    if (!socket.destroyed) socket.write(frame);
  };
  const onFrame = (frame: Frame) => {
    switch (frame.kind) {
      case FrameKind.Request: {
        const message = parseJsonPayload(frame.payload);
        const op = typeof message.op === "string" ? message.op : "";
        const args = (message.args ?? {}) as Record<string, unknown>;
        const channel = frame.channel;
        if (op === "pyro.fork") {
          ops.fork(args).then(
            (result) => send(encodeJsonFrame(FrameKind.Response, channel, { ok: true, result })),
            (error: unknown) =>
              send(
                encodeJsonFrame(FrameKind.Response, channel, {
                  ok: false,
                  error: { code: "fork_failed", message: toPyroError(error).message },
                }),
              ),
          );
          return;
        }
        if (op === "pyro.stop") {
          void ops.stop().then(() => {
            send(
              encodeJsonFrame(FrameKind.Response, channel, { ok: true, result: { stopped: true } }),
            );
            socket.end(() => process.exit(0));
          });
          return;
        }
        const abort = new AbortController();
        const wantsInput = INPUT_OPS.has(op) || (op === "exec" && args.stdin === true);
        const input = wantsInput ? new PassThrough() : undefined;
        open.set(channel, { input, abort });
        agent
          .call(op, args, {
            input,
            signal: abort.signal,
            onData: (stream, bytes) => send(encodeDataFrame(channel, stream, bytes)),
          })
          .then(
            (result) => send(encodeJsonFrame(FrameKind.Response, channel, { ok: true, result })),
            (error: unknown) => {
              const e = toPyroError(error);
              const guestCode =
                isPyroError(error) && typeof e.details?.guest_code === "string"
                  ? e.details.guest_code
                  : e.code;
              send(
                encodeJsonFrame(FrameKind.Response, channel, {
                  ok: false,
                  error: { code: guestCode, message: e.message },
                }),
              );
            },
          )
          .finally(() => open.delete(channel));
        return;
      }
      case FrameKind.Data: {
        const { bytes } = parseStreamPayload(frame.payload);
        open.get(frame.channel)?.input?.write(bytes);
        return;
      }
      case FrameKind.Eof:
        open.get(frame.channel)?.input?.end();
        return;
      case FrameKind.Cancel:
        open.get(frame.channel)?.abort.abort();
        return;
      default:
        socket.destroy();
    }
  };
  socket.on("data", (chunk: Buffer) => {
    try {
      for (const frame of decoder.push(chunk)) onFrame(frame);
    } catch {
      socket.destroy();
    }
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    clients.delete(socket);
    // A client that goes away abandons its commands: kill them in the guest.
    for (const { abort, input } of open.values()) {
      abort.abort();
      input?.end();
    }
    open.clear();
  });
}

/**
 * Entry point of the detached supervisor process:
 * `supervisor.js <paths-json> <workspace-id>`, or `supervisor.js <paths-json> --standby <slot-json>`.
 */
export async function supervisorMain(argv: string[]): Promise<void> {
  const [pathsJson, id, slotJson] = argv;
  if (!pathsJson || !id || (id === "--standby" && !slotJson)) {
    process.stderr.write(
      "usage: supervisor <paths-json> <workspace-id> | <paths-json> --standby <slot-json>\n",
    );
    process.exit(2);
  }
  const paths = JSON.parse(pathsJson) as PyroPaths;
  if (id === "--standby") {
    await runStandby(paths, JSON.parse(slotJson!) as StandbySlot);
    return;
  }
  // The starter reads one JSON line from our stdout, then goes away.
  process.stdout.on("error", () => {});
  await runSupervisor(paths, id, (ready) => {
    process.stdout.write(`${JSON.stringify(ready)}\n`);
    if (!ready.ok) process.exitCode = 1;
  });
}
