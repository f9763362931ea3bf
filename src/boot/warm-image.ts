/**
 * Warm images: an environment booted once, paused, and saved (memory plus
 * root disk), so creating a workspace is a restore instead of a cold boot.
 *
 *   cache/warm/<shape>/manifest.json  key, checksums, proof
 *   cache/warm/<shape>/memory.ram      guest RAM, byte for byte (sparse)
 *   cache/warm/<shape>/state.bin       QEMU device state (a migration stream without RAM)
 *   cache/warm/<shape>/disk.qcow2      root disk at save time (overlay of the rootfs blob)
 *
 * where <shape> is <env>-<vcpus>c-<mem>m, plus "-net" for the networked
 * variant: a VM saved without a network device cannot become one with it,
 * so each network policy but "off" restores from that variant.
 *
 * A restore maps memory.ram copy-on-write instead of loading it, so it costs
 * what the guest touches, and untouched pages are shared by every workspace
 * restored from it. The files are therefore never rewritten in place: a new
 * snapshot is a new directory renamed over the old one, and VMs still
 * mapping the old file keep its (unlinked) inode.
 *
 * A warm image is only used when every part of its key still matches (pyro,
 * guest runtime, environment artifacts, QEMU version, accelerator, resources)
 * and its files match their checksums; otherwise it is stale and a cold boot
 * is used, saying why. The directory is built aside and renamed into place,
 * so a killed prepare never leaves a warm image that looks valid.
 */
import fs from "node:fs";
import path from "node:path";
import {
  ensurePrivateDir,
  readJsonFile,
  writeFileAtomic,
  type PyroPaths,
} from "../config/paths.js";
import type { EnvironmentCache } from "../environments/cache.js";
import { environmentSlug } from "../environments/catalog.js";
import { fileMatches, rememberSha256, sha256File } from "../util/hash.js";
import { withLock } from "../util/lock.js";
import { removeTree } from "../util/mounts.js";
import type { ProgressFn } from "../util/progress.js";
import { chooseAccel, type AccelDecision } from "../vm/accel.js";
import type { QemuInfo } from "../vm/qemu.js";
import { VERSION } from "../version.js";

/**
 * Bumped when the layout of a warm image, or what prepare leaves in it,
 * changes; older ones are then stale. 4: the shell module is loaded.
 */
export const WARM_FORMAT = 4;

/** What a warm image is a saved VM of: the environment, its size, and whether it has a NIC. */
export interface WarmShape {
  environment: string;
  vcpus: number;
  memMib: number;
  network: boolean;
}

/** The name of a shape's directory (warm images) and standby slot. */
export function shapeName(shape: WarmShape): string {
  const base = `${environmentSlug(shape.environment)}-${shape.vcpus}c-${shape.memMib}m`;
  return shape.network ? `${base}-net` : base;
}

export function shapeOfKey(key: WarmKey): WarmShape {
  return {
    environment: key.environment,
    vcpus: key.vcpu_count,
    memMib: key.mem_mib,
    // Older keys have no network field: they were all saved without a NIC.
    network: key.network === true,
  };
}

export interface WarmKey {
  format: number;
  pyro_version: string;
  runtime: string;
  environment: string;
  kernel: string;
  initramfs: string;
  rootfs: string;
  qemu_version: string;
  accel: "kvm" | "tcg";
  vcpu_count: number;
  mem_mib: number;
  /** Saved with a network device (the variant for policies other than "off"). */
  network: boolean;
}

interface StoredFile {
  sha256: string;
  size: number;
}

export interface WarmManifest {
  key: WarmKey;
  created_at: string;
  prepare_ms: number;
  memory: StoredFile;
  state: StoredFile;
  disk: StoredFile;
  /** Bytes the warm image occupies on disk (memory.ram is sparse). */
  allocated_bytes: number;
}

export type WarmState =
  | { state: "warm"; manifest: WarmManifest; memory: string; deviceState: string; disk: string }
  | { state: "cold"; reason: string }
  | { state: "stale"; reason: string; changed: string[] };

export class WarmImages {
  constructor(
    private readonly paths: PyroPaths,
    private readonly cache: EnvironmentCache,
  ) {}

  get root(): string {
    return path.join(this.paths.cache, "warm");
  }

  dir(shape: WarmShape): string {
    return path.join(this.root, shapeName(shape));
  }

  /**
   * The key for `shape` as it is now, with the accelerator that key implies
   * (the cached verdict for the environment's kernel).
   */
  async currentKeyFor(
    shape: WarmShape,
    qemu: QemuInfo,
    progress?: ProgressFn,
  ): Promise<{ key: WarmKey; accel: AccelDecision }> {
    const resolved = await this.cache.ensure(shape.environment, progress);
    const accel = await chooseAccel(this.paths.hostCache, qemu, {
      kernel: resolved.kernel,
      initrd: resolved.initramfs,
    });
    return { key: await this.currentKey(shape, qemu, accel), accel };
  }

  /** Everything a warm image of `shape` depends on, as it is now, for a VM booted with `accel`. */
  async currentKey(shape: WarmShape, qemu: QemuInfo, accel: AccelDecision): Promise<WarmKey> {
    const resolved = await this.cache.ensure(shape.environment);
    const runtime = await this.cache.ensureRuntime();
    return {
      format: WARM_FORMAT,
      pyro_version: VERSION,
      runtime: runtime.key,
      environment: shape.environment,
      kernel: resolved.manifest.artifacts.kernel.sha256,
      initramfs: resolved.manifest.artifacts.initramfs.sha256,
      rootfs: resolved.manifest.artifacts.rootfs.sha256,
      qemu_version: qemu.version,
      accel: accel.accel,
      vcpu_count: shape.vcpus,
      mem_mib: shape.memMib,
      network: shape.network,
    };
  }

  /** warm (usable now), cold (never prepared) or stale (which key changed, or a damaged file). */
  async state(key: WarmKey): Promise<WarmState> {
    const dir = this.dir(shapeOfKey(key));
    const manifest = readJsonFile<WarmManifest>(path.join(dir, "manifest.json"));
    if (!manifest)
      return {
        state: "cold",
        reason: `${key.environment} was never prepared for ${key.vcpu_count} vCPU / ${key.mem_mib} MiB${key.network ? " with a network" : ""}`,
      };
    const changed = (Object.keys(key) as (keyof WarmKey)[]).filter(
      (k) => manifest.key[k] !== key[k],
    );
    if (changed.length > 0) {
      return {
        state: "stale",
        changed,
        reason: `prepared for a different ${changed.map(describeKey).join(", ")}`,
      };
    }
    const files = warmImageFiles(dir);
    for (const [file, stored, what] of [
      [files.memory, manifest.memory, "memory snapshot"],
      [files.deviceState, manifest.state, "device state"],
      [files.disk, manifest.disk, "disk snapshot"],
    ] as const) {
      if (!(await fileMatches(file, stored, path.join(dir, VERIFIED_MEMO)))) {
        return { state: "stale", changed: [], reason: `the ${what} is missing or damaged` };
      }
    }
    return { state: "warm", manifest, ...files };
  }

  /**
   * Save a warm image from `save`, which writes memory.ram, state.bin and
   * disk.qcow2 (warmImageFiles) into the directory it is given. Built aside,
   * then renamed into place.
   */
  async store(
    key: WarmKey,
    save: (dir: string) => Promise<void>,
    started: number,
  ): Promise<WarmManifest> {
    ensurePrivateDir(this.root);
    ensurePrivateDir(this.paths.locks);
    const final = this.dir(shapeOfKey(key));
    return withLock(path.join(this.paths.locks, `warm-${path.basename(final)}.lock`), async () => {
      const staging = fs.mkdtempSync(path.join(this.root, `.staging-${process.pid}-`));
      try {
        await save(staging);
        const staged = warmImageFiles(staging);
        const manifest: WarmManifest = {
          key,
          created_at: new Date().toISOString(),
          prepare_ms: Date.now() - started,
          memory: await describeFile(staged.memory),
          state: await describeFile(staged.deviceState),
          disk: await describeFile(staged.disk),
          allocated_bytes: Object.values(staged).reduce((sum, f) => sum + allocatedBytes(f), 0),
        };
        writeFileAtomic(
          path.join(staging, "manifest.json"),
          `${JSON.stringify(manifest, null, 2)}\n`,
        );
        const old = `${final}.old-${process.pid}`;
        if (fs.existsSync(final)) fs.renameSync(final, old);
        fs.renameSync(staging, final);
        await removeTree(old);
        // Just hashed: spare the first restore hashing a GiB of RAM again.
        const files = warmImageFiles(final);
        const memo = path.join(final, VERIFIED_MEMO);
        rememberSha256(files.memory, manifest.memory.sha256, memo);
        rememberSha256(files.deviceState, manifest.state.sha256, memo);
        rememberSha256(files.disk, manifest.disk.sha256, memo);
        return manifest;
      } finally {
        await removeTree(staging);
      }
    });
  }

  /** Bytes warm images occupy on disk. */
  diskUsageBytes(): number {
    if (!fs.existsSync(this.root)) return 0;
    let total = 0;
    for (const entry of fs.readdirSync(this.root)) total += treeBytes(path.join(this.root, entry));
    return total;
  }

  /** Remove warm images that no longer match their environment (or all of them). */
  async prune(keep: (manifest: WarmManifest) => Promise<boolean>): Promise<number> {
    if (!fs.existsSync(this.root)) return 0;
    let freed = 0;
    for (const entry of fs.readdirSync(this.root)) {
      const dir = path.join(this.root, entry);
      const manifest = readJsonFile<WarmManifest>(path.join(dir, "manifest.json"));
      if (manifest && (await keep(manifest))) continue;
      freed += treeBytes(dir);
      await removeTree(dir);
    }
    return freed;
  }
}

const VERIFIED_MEMO = "verified.json";

/** The files of a warm image directory. */
export function warmImageFiles(dir: string): { memory: string; deviceState: string; disk: string } {
  return {
    memory: path.join(dir, "memory.ram"),
    deviceState: path.join(dir, "state.bin"),
    disk: path.join(dir, "disk.qcow2"),
  };
}

async function describeFile(file: string): Promise<StoredFile> {
  return { sha256: await sha256File(file), size: fs.statSync(file).size };
}

/** Bytes a file occupies on disk (less than its size when sparse). */
function allocatedBytes(file: string): number {
  return fs.statSync(file).blocks * 512;
}

/** Bytes the files of a directory (or a lone file) occupy on disk. */
function treeBytes(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  if (!fs.statSync(dir).isDirectory()) return allocatedBytes(dir);
  return fs.readdirSync(dir).reduce((sum, name) => sum + allocatedBytes(path.join(dir, name)), 0);
}

function describeKey(key: keyof WarmKey): string {
  const names: Record<keyof WarmKey, string> = {
    format: "snapshot format",
    pyro_version: "pyro version",
    runtime: "guest agent runtime",
    environment: "environment",
    kernel: "kernel",
    initramfs: "initramfs",
    rootfs: "environment image",
    qemu_version: "QEMU version",
    accel: "accelerator",
    vcpu_count: "vCPU count",
    mem_mib: "memory size",
    network: "network device",
  };
  return names[key];
}
