/**
 * One microVM: a qcow2 overlay over a read-only base, a QEMU process, the
 * guest agent connection and QMP. `MicroVm.boot` returns once the agent
 * answers; `destroy` stops QEMU and removes every host-side file.
 */
import { trace } from "../util/trace.js";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ensurePrivateDir } from "../config/paths.js";
import { ErrorCodes, PyroError } from "../errors.js";
import { AgentClient } from "../protocol/client.js";
import type { HelloResult } from "../protocol/messages.js";
import { runCommand } from "../util/process.js";
import { silentProgress, type ProgressFn } from "../util/progress.js";
import { findExecutable } from "../util/which.js";
import { EgressProxy } from "../network/egress-proxy.js";
import { GUEST_NETWORK } from "../network/addresses.js";
import {
  buildQemuArgs,
  NETDEV_ID,
  type Accel,
  type GuestMemory,
  type UserNetwork,
} from "./qemu.js";
import { QmpClient } from "./qmp.js";
import { applyDelta, findRamMapping } from "./memory-delta.js";
import { killQemu, readRecord, writeRecord, type VmRecord } from "./registry.js";

export interface BootImages {
  kernel: string;
  initrd: string;
  /** qcow2 base of the root filesystem (read-only, shared). */
  rootBase: string;
  /** ext4 image mounted read-only at /opt/pyro. */
  runtimeDisk: string;
}

export interface BootOptions {
  vmsDir: string;
  qemuBinary: string;
  images: BootImages;
  accel: Accel;
  vcpus: number;
  memMib: number;
  /** Where guest RAM lives (default: anonymous). See GuestMemory. */
  memory?: GuestMemory;
  /** Give up if the agent has not answered by then. */
  bootTimeoutMs: number;
  /** The QEMU dies with this process (parent-death signal). */
  ephemeral: boolean;
  /**
   * A persistent root disk (qcow2 overlay) owned by the caller, created over
   * rootBase if missing and kept by destroy(). Without it the overlay lives
   * and dies with the VM directory.
   */
  disk?: string;
  /** Recorded in the VM's record so limits count the workspace, not its VM. */
  workspaceId?: string;
  /** A standby VM (supervisor/standby-pool.ts) until assignWorkspace() is called. */
  standby?: boolean;
  /**
   * Resume from a saved state (made by `saveState()`: a warm image or fork memory) instead of booting.
   * The disk must hold the state it was saved with.
   */
  restoreFrom?: string;
  /**
   * With `restoreFrom` holding device state only (`saveDeviceState()`): the
   * pages to write over `memory` (a private file mapping) first; see memory-delta.ts.
   */
  memoryDelta?: string;
  /** The guest's hostname (a restored guest's is `pyro` when none is given). */
  hostname?: string;
  /**
   * A network device (policy egress or egress+published-ports; see
   * network/policy.ts). The VM then owns an egress proxy for its lifetime,
   * and `allowHostPorts` are the host loopback ports the guest may reach.
   */
  network?: { allowHostPorts: number[] };
  progress?: ProgressFn;
}

/** Unix socket paths are limited to 108 bytes. */
const MAX_SOCKET_PATH = 100;
const STDERR_TAIL_BYTES = 8192;
/** RAM in a shared file (GuestMemory) stays in its file, out of the stream. */
const MIGRATION_CAPABILITIES = [{ capability: "x-ignore-shared", state: true }];
/** Bytes per second; effectively unlimited. */
const MAX_MIGRATION_BANDWIDTH = 64 * 1024 ** 3;

export class MicroVm {
  private exited: Promise<void>;
  private exitInfo: { code: number | null; signal: string | null } | undefined;
  private stderrTail = "";
  private destroyed = false;
  private egress: EgressProxy | undefined;
  agent!: AgentClient;
  hello!: HelloResult;
  bootMs = 0;

  private constructor(
    readonly id: string,
    readonly dir: string,
    private readonly child: ChildProcess,
    /** Where its RAM lives (a fork copies it by kind: memory-delta.ts or a full stream). */
    readonly memory: GuestMemory,
  ) {
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        resolve();
      });
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-STDERR_TAIL_BYTES);
    });
  }

  get consoleLog(): string {
    return path.join(this.dir, "console.log");
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  get qemuPid(): number | undefined {
    return this.child.pid;
  }

  /** A standby VM now belongs to workspace `workspaceId` (its record says so from now on). */
  assignWorkspace(workspaceId: string): void {
    const record = readRecord(this.dir);
    if (!record) throw new PyroError(ErrorCodes.VmDied, `the record of ${this.id} is gone`);
    delete record.standby;
    writeRecord({ ...record, workspace_id: workspaceId });
  }

  /** Resolves with a description of how QEMU ended (signal, exit code, last console lines). */
  async waitForExit(): Promise<string> {
    await this.exited;
    return `QEMU exited (${this.exitInfo?.signal ? `signal ${this.exitInfo.signal}` : `code ${this.exitInfo?.code}`})${this.diagnostics()}`;
  }

  static async boot(options: BootOptions): Promise<MicroVm> {
    const progress = options.progress ?? silentProgress;
    const id = `vm_${randomBytes(6).toString("hex")}`;
    const dir = path.join(ensurePrivateDir(options.vmsDir), id);
    const agentSocket = path.join(dir, "agent.sock");
    if (agentSocket.length > MAX_SOCKET_PATH) {
      throw new PyroError(
        ErrorCodes.UsageError,
        `state directory path is too long for unix sockets: ${dir}`,
        {
          hint: "set PYRO_HOME to a shorter path",
        },
      );
    }
    ensurePrivateDir(dir);
    const record: VmRecord = {
      id,
      dir,
      owner_pid: process.pid,
      qemu_pid: null,
      created_at: new Date().toISOString(),
      ...(options.workspaceId ? { workspace_id: options.workspaceId } : {}),
      ...(options.standby ? { standby: true } : {}),
    };
    writeRecord(record);
    const started = Date.now();
    const overlay = options.disk ?? path.join(dir, "root.qcow2");
    if (!fs.existsSync(overlay)) await createOverlay(options.images.rootBase, overlay);
    const network = options.network && userNetwork(dir, options.network.allowHostPorts);
    const egress = options.network
      ? await startEgress(dir, options.network.allowHostPorts)
      : undefined;
    let child: ChildProcess;
    try {
      const qemuArgs = buildQemuArgs({
        accel: options.accel,
        vcpus: options.vcpus,
        memMib: options.memMib,
        ...(options.memory ? { memory: options.memory } : {}),
        kernel: options.images.kernel,
        initrd: options.images.initrd,
        kernelArgs: [],
        disks: [
          { path: overlay, format: "qcow2", readonly: false },
          { path: options.images.runtimeDisk, format: "raw", readonly: true },
        ],
        agentSocket,
        qmpSocket: path.join(dir, "qmp.sock"),
        console: path.join(dir, "console.log"),
        // Loaded by resumeIncoming, once the migration capabilities are set.
        ...(options.restoreFrom ? { incoming: "defer" } : {}),
        ...(options.memoryDelta ? { incomingDeviceStateOnly: true } : {}),
        ...(network ? { network } : {}),
      });
      const setpriv = options.ephemeral ? findExecutable("setpriv") : undefined;
      const [command, args] = setpriv
        ? [setpriv, ["--pdeathsig", "KILL", "--", options.qemuBinary, ...qemuArgs]]
        : [options.qemuBinary, qemuArgs];
      progress(`${options.restoreFrom ? "restoring" : "booting"} ${id} (${options.accel})`);
      const snapshotFd = options.restoreFrom ? fs.openSync(options.restoreFrom, "r") : undefined;
      try {
        child = spawn(command, args, {
          stdio: ["ignore", "ignore", "pipe", ...(snapshotFd === undefined ? [] : [snapshotFd])],
          detached: !options.ephemeral,
        });
      } finally {
        if (snapshotFd !== undefined) fs.closeSync(snapshotFd);
      }
    } catch (error) {
      // Nothing started: the proxy must not keep this process alive.
      await egress?.close();
      throw error;
    }
    const memory = options.memory ?? { kind: "anonymous" };
    const vm = new MicroVm(id, dir, child, memory);
    vm.egress = egress;
    child.on("error", () => {});
    if (child.pid !== undefined) writeRecord({ ...record, qemu_pid: child.pid });
    try {
      trace("vm: qemu spawned");
      // Connect while QEMU is still loading a snapshot: the socket accepts before the guest runs.
      const connecting = vm.connectAgent(agentSocket, started + options.bootTimeoutMs);
      connecting.then((agent) => (vm.agent = agent)).catch(() => {});
      if (options.restoreFrom) {
        const delta = options.memoryDelta;
        await vm.resumeIncoming(
          started + options.bootTimeoutMs,
          delta ? () => vm.writeDelta(delta) : undefined,
        );
      }
      trace("vm: running");
      const agent = await connecting;
      // A restored guest wakes with the clock, entropy and name it was saved
      // with; the refresh goes out with the hello, not after it. A cold-booted
      // one (named `pyro` by its init) needs only its name.
      const refresh = options.restoreFrom
        ? agent.request("refresh", {
            time_ms: Date.now(),
            entropy: randomBytes(64).toString("base64"),
            hostname: options.hostname ?? "pyro",
          })
        : options.hostname
          ? agent.request("refresh", { hostname: options.hostname })
          : Promise.resolve(undefined);
      refresh.catch(() => {});
      [vm.hello] = await vm.withDeadline(
        Promise.all([agent.hello(), refresh]),
        started + options.bootTimeoutMs,
        "the guest agent to answer",
      );
      trace("vm: ready");
      vm.bootMs = Date.now() - started;
      progress(`${id} ready in ${(vm.bootMs / 1000).toFixed(1)}s`);
      return vm;
    } catch (error) {
      await vm.destroy();
      throw error;
    }
  }

  /**
   * Load the snapshot QEMU inherited as fd 3 (no copy through a pipe), then
   * run the guest: a snapshot taken from a paused VM restores paused.
   */
  private async resumeIncoming(deadline: number, before?: () => void): Promise<void> {
    let qmp: QmpClient | undefined;
    while (!qmp) {
      if (!this.running) throw this.bootFailure("QEMU exited while loading the snapshot");
      try {
        qmp = await this.qmp();
      } catch {
        if (Date.now() > deadline) throw this.bootTimeout("QEMU's control socket");
        await sleep(5);
      }
    }
    trace("vm: qmp ready");
    // QEMU answers QMP once its RAM is mapped: the delta goes in before the device state.
    before?.();
    trace("vm: delta written");
    await qmp.execute("migrate-set-capabilities", { capabilities: MIGRATION_CAPABILITIES });
    await qmp.execute("migrate-incoming", { uri: "fd:3" });
    while (true) {
      const status = (await qmp.execute("query-status")) as { status?: string; running?: boolean };
      if (status.running) return;
      if (status.status !== "inmigrate" && status.status !== "prelaunch") {
        await qmp.execute("cont");
        return;
      }
      if (Date.now() > deadline) throw this.bootTimeout("the snapshot to load");
      await sleep(5);
    }
  }

  /** Retry connecting to QEMU's agent socket until it is there or QEMU is gone. */
  private async connectAgent(socketPath: string, deadline: number): Promise<AgentClient> {
    while (true) {
      if (!this.running) throw this.bootFailure("QEMU exited while starting");
      try {
        return await AgentClient.connectUnix(socketPath);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== "ENOENT" && code !== "ECONNREFUSED") throw error;
      }
      if (Date.now() > deadline) throw this.bootTimeout("QEMU's agent socket");
      await sleep(20);
    }
  }

  private async withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.bootTimeout(what)), Math.max(0, deadline - Date.now()));
    });
    const died = this.exited.then(() => {
      throw this.bootFailure("the VM stopped while booting");
    });
    try {
      return await Promise.race([promise, timeout, died]);
    } catch (error) {
      if (error instanceof PyroError && error.code === ErrorCodes.VmDied && !this.running) {
        throw this.bootFailure("the VM stopped while booting");
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private bootFailure(reason: string): PyroError {
    return new PyroError(ErrorCodes.VmBootFailed, `${reason}${this.diagnostics()}`, {
      fix: { kind: "run_doctor" },
    });
  }

  private bootTimeout(what: string): PyroError {
    return new PyroError(
      ErrorCodes.VmBootTimeout,
      `timed out waiting for ${what}${this.diagnostics()}`,
      {
        fix: {
          kind: "run_doctor",
          note: "under software emulation boots are slow, so a larger timeout may help",
        },
      },
    );
  }

  private diagnostics(): string {
    const parts: string[] = [];
    if (this.exitInfo) parts.push(`QEMU exit ${this.exitInfo.code ?? this.exitInfo.signal}`);
    if (this.stderrTail.trim())
      parts.push(`QEMU said: ${this.stderrTail.trim().split("\n").slice(-5).join(" | ")}`);
    const console = tail(this.consoleLog, 2048).trim();
    if (console) parts.push(`guest console: ${console.split("\n").slice(-8).join(" | ")}`);
    return parts.length ? ` (${parts.join("; ")})` : "";
  }

  /** Stop QEMU (gracefully through QMP if it answers quickly) and remove the VM directory. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.agent?.close();
    this.qmpClient?.close();
    await this.egress?.close();
    if (this.running) {
      await this.quitViaQmp().catch(() => {});
      await Promise.race([this.exited, timeout(2000)]);
    }
    if (this.running) {
      killQemu(this.child.pid ?? null, this.dir);
      await Promise.race([this.exited, timeout(5000)]);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private qmpClient: QmpClient | undefined;

  /** The VM's QMP connection, opened on first use. */
  async qmp(): Promise<QmpClient> {
    if (!this.qmpClient) {
      this.qmpClient = await QmpClient.connect(path.join(this.dir, "qmp.sock"));
      this.qmpClient.on("closed", () => (this.qmpClient = undefined));
    }
    return this.qmpClient;
  }

  /**
   * Pause the VM and write its memory and device state to `file` (QMP
   * migrate to a file); RAM in a shared file stays in that file and only the
   * device state is written. The VM stays paused with its disk images
   * flushed: the caller copies the disk, then resumes or destroys the VM.
   */
  async saveState(file: string, timeoutMs = 120_000): Promise<void> {
    const qmp = await this.qmp();
    await qmp.execute("stop");
    await qmp.execute("migrate-set-capabilities", { capabilities: MIGRATION_CAPABILITIES });
    // The VM is paused: no reason to throttle the copy (QEMU's default is 128 MiB/s).
    await qmp.execute("migrate-set-parameters", { "max-bandwidth": MAX_MIGRATION_BANDWIDTH });
    // Owner-only before QEMU writes: it holds the guest's memory (secrets included).
    fs.writeFileSync(file, "", { mode: 0o600 });
    await qmp.execute("migrate", { uri: `exec:cat > ${shellQuoteFile(file)}` });
    await this.waitForMigration(qmp, timeoutMs);
  }

  /**
   * Pause the VM and write only its device state to `file` (no RAM): with a
   * memory delta of its RAM, what a fork restores (memory-delta.ts).
   */
  async saveDeviceState(file: string): Promise<void> {
    const qmp = await this.qmp();
    await qmp.execute("stop");
    fs.writeFileSync(file, "", { mode: 0o600 });
    // Despite the name, QEMU's generic "devices but not RAM" save (also used by COLO).
    await qmp.execute("xen-save-devices-state", { filename: file, live: false });
  }

  /** Write the pages of a memory delta file into this (not yet running) VM's RAM. */
  private writeDelta(file: string): void {
    if (this.memory.kind !== "file" || this.memory.shared || this.qemuPid === undefined)
      throw new Error("a memory delta needs RAM that is a private mapping of a file");
    const pid = this.qemuPid;
    applyDelta(file, `/proc/${pid}/mem`, findRamMapping(pid, this.memory.path));
  }

  /**
   * Forward the host's 127.0.0.1:hostPort to the guest's port (a published
   * port), while the VM runs. Only on a networked VM.
   */
  async forwardPort(hostPort: number, guestPort: number): Promise<void> {
    const rule = `tcp:127.0.0.1:${hostPort}-${GUEST_NETWORK.guestAddress}:${guestPort}`;
    // Success is silent; anything said is why it failed.
    const said = await this.monitor(`hostfwd_add ${NETDEV_ID} ${rule}`);
    if (said) {
      throw new PyroError(
        ErrorCodes.Conflict,
        `QEMU could not forward host port ${hostPort}: ${said}`,
      );
    }
  }

  /** Stop forwarding a published port; one that is not forwarded (any more) is fine. */
  async unforwardPort(hostPort: number): Promise<void> {
    const said = await this.monitor(`hostfwd_remove ${NETDEV_ID} tcp:127.0.0.1:${hostPort}`);
    if (!said || /removed$/.test(said) || /not found/i.test(said)) return;
    throw new PyroError(
      ErrorCodes.Conflict,
      `QEMU could not stop forwarding host port ${hostPort}: ${said}`,
    );
  }

  /** A human-monitor command (hostfwd has no QMP twin): what it printed. */
  private async monitor(command: string): Promise<string> {
    const out = await (
      await this.qmp()
    ).execute("human-monitor-command", {
      "command-line": command,
    });
    return typeof out === "string" ? out.trim() : "";
  }

  /** Let a VM paused by `saveState()` run again. */
  async resume(): Promise<void> {
    await (await this.qmp()).execute("cont");
  }

  private async waitForMigration(qmp: QmpClient, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const info = (await qmp.execute("query-migrate")) as {
        status?: string;
        "error-desc"?: string;
      };
      if (info.status === "completed") return;
      if (info.status === "failed" || info.status === "cancelled") {
        throw new PyroError(
          ErrorCodes.VmBootFailed,
          `QEMU could not save the VM: ${info["error-desc"] ?? info.status}`,
        );
      }
      if (Date.now() > deadline)
        throw new PyroError(ErrorCodes.VmBootTimeout, "saving the VM took too long");
      await sleep(20);
    }
  }

  private async quitViaQmp(): Promise<void> {
    const socket = path.join(this.dir, "qmp.sock");
    const qmp = await Promise.race([
      QmpClient.connect(socket),
      timeout(1000).then(() => undefined),
    ]);
    if (!qmp) return;
    try {
      await Promise.race([qmp.execute("quit"), timeout(1000)]);
    } finally {
      qmp.close();
    }
  }
}

/** Where a VM's egress proxy listens, and where each allowed host port is served. */
const egressSocket = (dir: string) => path.join(dir, "egress.sock");
const hostPortSocket = (dir: string, port: number) => path.join(dir, `host-${port}.sock`);

/** The egress proxy of a networked VM, serving its allowed host ports too. */
async function startEgress(dir: string, allowHostPorts: number[]): Promise<EgressProxy> {
  const proxy = await EgressProxy.listen(egressSocket(dir));
  try {
    for (const port of allowHostPorts) await proxy.forwardHostPort(port, hostPortSocket(dir, port));
  } catch (error) {
    await proxy.close();
    throw error;
  }
  return proxy;
}

/**
 * The guest's network: its egress proxy at PROXY_URL, and each allowed host
 * port at the host address, both served by this process (startEgress).
 * socat carries each connection there (one process per connection, started
 * by QEMU; the proxy's connection limits bound how many live at once).
 */
function userNetwork(dir: string, allowHostPorts: number[]): UserNetwork {
  const socat = findExecutable("socat");
  if (!socat) {
    throw new PyroError(ErrorCodes.HostRequirementMissing, "networked workspaces need socat", {
      fix: { kind: "run_setup", packages: ["socat"] },
    });
  }
  if (/[\s'"\\,]/.test(dir + socat)) {
    throw new PyroError(
      ErrorCodes.UsageError,
      `a networked VM needs paths without spaces, quotes or commas (${dir}, ${socat})`,
      { hint: "set PYRO_HOME to a plain path" },
    );
  }
  return {
    subnet: GUEST_NETWORK.subnet,
    gatewayAddress: GUEST_NETWORK.gatewayAddress,
    forwards: [
      {
        address: GUEST_NETWORK.proxyAddress,
        port: GUEST_NETWORK.proxyPort,
        command: [socat, "STDIO", `UNIX-CONNECT:${egressSocket(dir)}`],
      },
      ...allowHostPorts.map((port) => ({
        address: GUEST_NETWORK.hostAddress,
        port,
        command: [socat, "STDIO", `UNIX-CONNECT:${hostPortSocket(dir, port)}`],
      })),
    ],
  };
}

/** A qcow2 overlay over a read-only base: only changed blocks are stored. */
export async function createOverlay(base: string, overlay: string): Promise<void> {
  const tmp = `${overlay}.tmp-${process.pid}`;
  await runCommand("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", tmp], {
    errorCode: ErrorCodes.VmBootFailed,
  });
  fs.renameSync(tmp, overlay);
}

/** A path for QEMU's exec: migration URIs (run by /bin/sh). */
function shellQuoteFile(file: string): string {
  return `'${file.replace(/'/g, "'\\''")}'`;
}

/** A deadline for Promise.race that does not keep the process alive once the race is decided. */
function timeout(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function tail(file: string, bytes: number): string {
  try {
    const fd = fs.openSync(file, "r");
    try {
      const size = fs.fstatSync(fd).size;
      const length = Math.min(size, bytes);
      const buffer = Buffer.alloc(length);
      fs.readSync(fd, buffer, 0, length, size - length);
      return buffer.toString("utf8");
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return "";
  }
}
