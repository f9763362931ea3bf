/**
 * QEMU discovery and the command line of a pyro microVM.
 * Kept as pure functions so the exact argv is unit-testable.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ensurePrivateDir, readJsonFile, writeFileAtomic } from "../config/paths.js";
import { findExecutable } from "../util/which.js";

export type Accel = "kvm" | "tcg";

export interface QemuInfo {
  binary: string;
  imgBinary: string | undefined;
  version: string;
}

/** Name of the virtio-serial port the guest agent listens on (/dev/virtio-ports/<name>). */
export const AGENT_PORT_NAME = "org.pyro.agent";

/**
 * The QEMU to use and its version. Asking QEMU its version costs a process
 * start, so the answer is remembered per binary (path, size, mtime, inode):
 * in this process, and in `cacheDir` when given.
 */
export function findQemu(cacheDir?: string): QemuInfo | undefined {
  const binary = process.env.PYRO_QEMU ?? findExecutable("qemu-system-x86_64");
  if (!binary) return undefined;
  let stamp: string;
  try {
    const stat = fs.statSync(binary);
    stamp = `${binary}:${stat.size}:${stat.mtimeMs}:${stat.ino}`;
  } catch {
    return undefined;
  }
  const imgBinary = findExecutable("qemu-img");
  const cacheFile = cacheDir ? path.join(cacheDir, "qemu.json") : undefined;
  let version = versionMemo.get(stamp);
  if (!version && cacheFile) {
    const cached = readJsonFile<{ stamp: string; version: string }>(cacheFile);
    if (cached?.stamp === stamp) version = cached.version;
  }
  if (!version) {
    try {
      const out = execFileSync(binary, ["--version"], { encoding: "utf8", timeout: 10_000 });
      version = /version ([0-9][^\s]*)/.exec(out)?.[1] ?? "unknown";
    } catch {
      return undefined;
    }
    if (cacheFile) {
      ensurePrivateDir(path.dirname(cacheFile));
      writeFileAtomic(cacheFile, JSON.stringify({ stamp, version }));
    }
  }
  versionMemo.set(stamp, version);
  return { binary, imgBinary, version };
}

const versionMemo = new Map<string, string>();

/**
 * The host TSC frequency in kHz. Under TCG the guest kernel stalls calibrating
 * its TSC on microvm unless told (HOST-NOTES), so we pass tsc_early_khz.
 */
export function hostTscKhz(): number | undefined {
  try {
    const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
    const mhz = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(cpuinfo)?.[1];
    return mhz ? Math.round(Number(mhz) * 1000) : undefined;
  } catch {
    return undefined;
  }
}

export interface DiskSpec {
  path: string;
  format: "qcow2" | "raw";
  readonly: boolean;
}

/**
 * Where guest RAM lives. Always a named backend ("mem"), so a migration stream
 * made by any pyro VM loads into any other of the same size.
 *   anonymous        plain RAM: cold boots, and restores of a full stream (forks)
 *   file, shared     RAM written through to `path`: the VM a warm image is made from
 *   file, private    a copy-on-write mapping of `path`: a warm restore. Pages are
 *                    read lazily from the file and shared by every VM mapping it,
 *                    so the file must never change while mapped (it is replaced,
 *                    never rewritten).
 * With the x-ignore-shared migration capability (MicroVm sets it on both
 * sides), a shared file's pages stay out of the migration stream: a warm
 * snapshot is the RAM file plus a small state file.
 */
export type GuestMemory = { kind: "anonymous" } | { kind: "file"; path: string; shared: boolean };

export interface MachineConfig {
  accel: Accel;
  vcpus: number;
  memMib: number;
  memory?: GuestMemory;
  kernel: string;
  initrd: string;
  kernelArgs: string[];
  disks: DiskSpec[];
  /** Unix socket QEMU serves for the agent's virtio-serial port; omitted for probes. */
  agentSocket?: string;
  qmpSocket?: string;
  /** Where the serial console goes: a file path, or "stdio". */
  console: string;
  /** Wait for a migration (QEMU -incoming, e.g. "defer") instead of booting. */
  incoming?: string;
  /**
   * The incoming stream is device state alone (xen-save-devices-state), which
   * has no configuration section: QEMU must not ask for one.
   */
  incomingDeviceStateOnly?: boolean;
  /** A network device on a restricted user-mode network; none when omitted. */
  network?: UserNetwork;
}

/**
 * QEMU user-mode networking in restricted mode: no root, and the guest
 * reaches nothing on its own. Each forward hands a guest TCP connection to
 * address:port to a new host process running `command` (its stdin and
 * stdout are the connection). Published ports are added at run time (QMP).
 */
export interface UserNetwork {
  subnet: string;
  /** The stack's own address (QEMU's host=); forwards cannot use it. */
  gatewayAddress: string;
  forwards: { address: string; port: number; command: string[] }[];
}

/** The NIC's id in QEMU (hostfwd_add/hostfwd_remove name it). */
export const NETDEV_ID = "net0";

function userNetdev(network: UserNetwork): string {
  const forwards = network.forwards.map((forward) => {
    if (forward.command.some((arg) => /[\s'"\\]/.test(arg))) {
      throw new Error(
        `a network forward command cannot contain spaces or quotes: ${forward.command.join(" ")}`,
      );
    }
    return `guestfwd=tcp:${forward.address}:${forward.port}-cmd:${optionValue(forward.command.join(" "))}`;
  });
  return [
    "user",
    `id=${NETDEV_ID}`,
    "restrict=on",
    `net=${network.subnet}`,
    `host=${network.gatewayAddress}`,
    "ipv6=off",
    ...forwards,
  ].join(",");
}

export function kernelCommandLine(accel: Accel, extra: string[]): string {
  const args = ["console=ttyS0", "quiet", "loglevel=3", "panic=-1", "reboot=t", "rw"];
  if (accel === "tcg") {
    const khz = hostTscKhz();
    if (khz) args.push(`tsc_early_khz=${khz}`);
  }
  return [...args, ...extra].join(" ");
}

/** A value inside a QEMU option list (key=value,...): commas are doubled. */
export function optionValue(value: string): string {
  return value.replace(/,/g, ",,");
}

function memoryBackend(memory: GuestMemory, memMib: number): string {
  if (memory.kind === "anonymous") return `memory-backend-ram,id=mem,size=${memMib}M`;
  const share = memory.shared ? "on" : "off";
  return `memory-backend-file,id=mem,size=${memMib}M,mem-path=${optionValue(memory.path)},share=${share}`;
}

export function buildQemuArgs(config: MachineConfig): string[] {
  const args = [
    "-nodefaults",
    "-no-user-config",
    "-no-reboot",
    "-display",
    "none",
    "-M",
    "microvm,pit=on,pic=on,rtc=on,isa-serial=on,memory-backend=mem",
    "-accel",
    config.accel,
    "-cpu",
    config.accel === "kvm" ? "host" : "max",
    "-smp",
    String(config.vcpus),
    "-m",
    `${config.memMib}M`,
    "-object",
    memoryBackend(config.memory ?? { kind: "anonymous" }, config.memMib),
    "-global",
    "virtio-mmio.force-legacy=false",
    "-kernel",
    config.kernel,
    "-initrd",
    config.initrd,
    "-append",
    kernelCommandLine(config.accel, config.kernelArgs),
  ];
  config.disks.forEach((disk, index) => {
    const drive = [
      `id=disk${index}`,
      `file=${optionValue(disk.path)}`,
      `format=${disk.format}`,
      "if=none",
      "cache=writeback",
      ...(disk.readonly ? ["readonly=on"] : []),
    ].join(",");
    args.push("-drive", drive, "-device", `virtio-blk-device,drive=disk${index}`);
  });
  args.push("-device", "virtio-rng-device");
  if (config.network) {
    args.push(
      "-netdev",
      userNetdev(config.network),
      "-device",
      `virtio-net-device,netdev=${NETDEV_ID},mac=52:54:00:12:34:56`,
    );
  }
  if (config.agentSocket) {
    args.push(
      "-device",
      "virtio-serial-device",
      "-chardev",
      `socket,id=agent,path=${optionValue(config.agentSocket)},server=on,wait=off`,
      "-device",
      `virtserialport,chardev=agent,name=${AGENT_PORT_NAME}`,
    );
  }
  if (config.console === "stdio") {
    args.push("-serial", "stdio");
  } else {
    args.push(
      "-chardev",
      `file,id=console,path=${optionValue(config.console)}`,
      "-serial",
      "chardev:console",
    );
  }
  if (config.qmpSocket)
    args.push("-qmp", `unix:${optionValue(config.qmpSocket)},server=on,wait=off`);
  if (config.incoming) args.push("-incoming", config.incoming);
  if (config.incomingDeviceStateOnly) args.push("-global", "migration.send-configuration=off");
  return args;
}
