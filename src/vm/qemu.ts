/**
 * QEMU discovery and the command line of a pyro microVM.
 * Kept as pure functions so the exact argv is unit-testable.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { findExecutable } from "../util/which.js";

export type Accel = "kvm" | "tcg";

export interface QemuInfo {
  binary: string;
  imgBinary: string | undefined;
  version: string;
}

/** Name of the virtio-serial port the guest agent listens on (/dev/virtio-ports/<name>). */
export const AGENT_PORT_NAME = "org.pyro.agent";

export function findQemu(): QemuInfo | undefined {
  const binary = process.env.PYRO_QEMU ?? findExecutable("qemu-system-x86_64");
  if (!binary) return undefined;
  let version = "unknown";
  try {
    const out = execFileSync(binary, ["--version"], { encoding: "utf8", timeout: 10_000 });
    version = /version ([0-9][^\s]*)/.exec(out)?.[1] ?? "unknown";
  } catch {
    return undefined;
  }
  return { binary, imgBinary: findExecutable("qemu-img"), version };
}

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

export interface MachineConfig {
  accel: Accel;
  vcpus: number;
  memMib: number;
  kernel: string;
  initrd: string;
  kernelArgs: string[];
  disks: DiskSpec[];
  /** Unix socket QEMU serves for the agent's virtio-serial port; omitted for probes. */
  agentSocket?: string;
  qmpSocket?: string;
  /** Where the serial console goes: a file path, or "stdio". */
  console: string;
  /** Start by loading a memory snapshot from this migration URI (QEMU -incoming) instead of booting. */
  incoming?: string;
}

export function kernelCommandLine(accel: Accel, extra: string[]): string {
  const args = ["console=ttyS0", "quiet", "loglevel=3", "panic=-1", "reboot=t", "rw"];
  if (accel === "tcg") {
    const khz = hostTscKhz();
    if (khz) args.push(`tsc_early_khz=${khz}`);
  }
  return [...args, ...extra].join(" ");
}

export function buildQemuArgs(config: MachineConfig): string[] {
  const args = [
    "-nodefaults",
    "-no-user-config",
    "-no-reboot",
    "-display",
    "none",
    "-M",
    "microvm,pit=on,pic=on,rtc=on,isa-serial=on",
    "-accel",
    config.accel,
    "-cpu",
    config.accel === "kvm" ? "host" : "max",
    "-smp",
    String(config.vcpus),
    "-m",
    `${config.memMib}M`,
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
      `file=${disk.path}`,
      `format=${disk.format}`,
      "if=none",
      "cache=writeback",
      ...(disk.readonly ? ["readonly=on"] : []),
    ].join(",");
    args.push("-drive", drive, "-device", `virtio-blk-device,drive=disk${index}`);
  });
  args.push("-device", "virtio-rng-device");
  if (config.agentSocket) {
    args.push(
      "-device",
      "virtio-serial-device",
      "-chardev",
      `socket,id=agent,path=${config.agentSocket},server=on,wait=off`,
      "-device",
      `virtserialport,chardev=agent,name=${AGENT_PORT_NAME}`,
    );
  }
  if (config.console === "stdio") {
    args.push("-serial", "stdio");
  } else {
    args.push("-chardev", `file,id=console,path=${config.console}`, "-serial", "chardev:console");
  }
  if (config.qmpSocket) args.push("-qmp", `unix:${config.qmpSocket},server=on,wait=off`);
  if (config.incoming) args.push("-incoming", config.incoming);
  return args;
}
