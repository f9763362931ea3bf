/**
 * Choosing the accelerator by trying: KVM only if a guest actually boots
 * with it within a short timeout (a /dev/kvm can exist and still hang every
 * guest, as nested PVM hosts do), otherwise TCG software emulation.
 * The verdict is cached per host kernel, QEMU version and guest kernel.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ensurePrivateDir, readJsonFile, writeFileAtomic } from "../config/paths.js";
import { PROBE_MARKER } from "./boot-scripts.js";
import { buildQemuArgs, type Accel, type QemuInfo } from "./qemu.js";

export interface AccelDecision {
  accel: Accel;
  kvm_usable: boolean;
  reason: string;
  /** How long the KVM probe boot took (or ran before giving up), ms. */
  probe_ms: number | null;
  probed_at: string;
  cache_key: string;
}

export const KVM_PROBE_TIMEOUT_MS = 15_000;

export function kvmDeviceStatus(): { ok: boolean; reason: string } {
  try {
    fs.accessSync("/dev/kvm", fs.constants.R_OK | fs.constants.W_OK);
    return { ok: true, reason: "/dev/kvm is accessible" };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT"
      ? { ok: false, reason: "no /dev/kvm (KVM not available on this host)" }
      : {
          ok: false,
          reason: "/dev/kvm is not accessible to this user (add yourself to the kvm group)",
        };
  }
}

/**
 * Boot kernel + initramfs with pyro.probe=1; the initramfs prints a marker
 * and reboots. Resolves true if the marker shows up in time. Never hangs.
 */
export function probeBoot(
  qemu: QemuInfo,
  accel: Accel,
  images: { kernel: string; initrd: string },
  timeoutMs: number,
): Promise<{ ok: boolean; timedOut: boolean; ms: number; output: string }> {
  const args = buildQemuArgs({
    accel,
    vcpus: 1,
    memMib: 256,
    kernel: images.kernel,
    initrd: images.initrd,
    kernelArgs: ["pyro.probe=1"],
    disks: [],
    console: "stdio",
  });
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(qemu.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let done = false;
    const finish = (ok: boolean, timedOut = false) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      resolve({ ok, timedOut, ms: Date.now() - started, output: output.slice(-2000) });
    };
    const timer = setTimeout(() => finish(false, true), timeoutMs);
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-8192);
      if (output.includes(PROBE_MARKER)) finish(true);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", () => finish(false));
    child.on("exit", () => finish(output.includes(PROBE_MARKER)));
  });
}

export function accelCacheKey(qemu: QemuInfo, kernel: string): string {
  let kernelId = kernel;
  try {
    const stat = fs.statSync(kernel);
    kernelId = `${path.basename(kernel)}:${stat.size}`;
  } catch {
    // keep the path
  }
  return [os.release(), qemu.version, kernelId, kvmDeviceStatus().ok].join("|");
}

export function readCachedDecision(hostCacheDir: string): AccelDecision | undefined {
  return readJsonFile<AccelDecision>(path.join(hostCacheDir, "accel.json"));
}

/**
 * The accelerator to use. PYRO_ACCEL=kvm|tcg forces one. Otherwise a cached
 * verdict for the same host, QEMU and kernel, else a fresh probe.
 */
export async function chooseAccel(
  hostCacheDir: string,
  qemu: QemuInfo,
  images: { kernel: string; initrd: string },
  options: { recheck?: boolean } = {},
): Promise<AccelDecision> {
  const forced = process.env.PYRO_ACCEL;
  const key = accelCacheKey(qemu, images.kernel);
  if (forced === "kvm" || forced === "tcg") {
    return {
      accel: forced,
      kvm_usable: forced === "kvm",
      reason: `forced by PYRO_ACCEL=${forced}`,
      probe_ms: null,
      probed_at: new Date().toISOString(),
      cache_key: key,
    };
  }
  const cached = readCachedDecision(hostCacheDir);
  if (!options.recheck && cached && cached.cache_key === key) return cached;
  const device = kvmDeviceStatus();
  let decision: AccelDecision;
  if (!device.ok) {
    decision = {
      accel: "tcg",
      kvm_usable: false,
      reason: `${device.reason}; using software emulation (TCG)`,
      probe_ms: null,
      probed_at: new Date().toISOString(),
      cache_key: key,
    };
  } else {
    const probe = await probeBoot(qemu, "kvm", images, KVM_PROBE_TIMEOUT_MS);
    decision = {
      accel: probe.ok ? "kvm" : "tcg",
      kvm_usable: probe.ok,
      reason: probe.ok
        ? `a guest booted with KVM in ${probe.ms} ms`
        : probe.timedOut
          ? `/dev/kvm exists but a guest did not boot with it within ${KVM_PROBE_TIMEOUT_MS / 1000}s (nested or paravirtual KVM?); using software emulation (TCG)`
          : `/dev/kvm exists but QEMU could not run a guest with it (${lastLine(probe.output)}); using software emulation (TCG)`,
      probe_ms: probe.ms,
      probed_at: new Date().toISOString(),
      cache_key: key,
    };
  }
  ensurePrivateDir(hostCacheDir);
  writeFileAtomic(path.join(hostCacheDir, "accel.json"), JSON.stringify(decision, null, 2));
  return decision;
}

function lastLine(output: string): string {
  const lines = output
    .trim()
    .split("\n")
    .filter((line) => line.trim());
  return (lines.find((line) => line.includes("error")) ?? lines.at(-1) ?? "no output").slice(
    0,
    200,
  );
}
