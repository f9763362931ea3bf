/**
 * Warm snapshots: an environment booted once, paused, and saved (memory plus
 * root disk), so creating a workspace is a restore instead of a cold boot.
 *
 *   cache/warm/<env>-<vcpus>c-<mem>m/manifest.json  key, checksums, proof
 *   cache/warm/<env>-<vcpus>c-<mem>m/memory.bin      QEMU migration stream
 *   cache/warm/<env>-<vcpus>c-<mem>m/disk.qcow2      root disk at save time (overlay of the rootfs blob)
 *
 * A snapshot is only used when every part of its key still matches (pyro,
 * guest runtime, environment artifacts, QEMU version, accelerator, resources)
 * and its files match their checksums; otherwise it is stale and a cold boot
 * is used, saying why. The directory is built aside and renamed into place,
 * so a killed prepare never leaves a snapshot that looks valid.
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
import { fileMatches, sha256File } from "../util/hash.js";
import { withLock } from "../util/lock.js";
import { removeTree } from "../util/mounts.js";
import type { AccelDecision } from "../vm/accel.js";
import type { QemuInfo } from "../vm/qemu.js";
import { VERSION } from "../version.js";

export interface WarmKey {
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
  disk: StoredFile;
}

export type WarmState =
  | { state: "warm"; manifest: WarmManifest; memory: string; disk: string }
  | { state: "cold"; reason: string }
  | { state: "stale"; reason: string; changed: string[] };

export class WarmSnapshots {
  constructor(
    private readonly paths: PyroPaths,
    private readonly cache: EnvironmentCache,
  ) {}

  get root(): string {
    return path.join(this.paths.cache, "warm");
  }

  dir(environment: string, vcpus: number, memMib: number): string {
    return path.join(this.root, `${environmentSlug(environment)}-${vcpus}c-${memMib}m`);
  }

  /** Everything a snapshot depends on, as it is now. */
  async currentKey(
    environment: string,
    vcpus: number,
    memMib: number,
    qemu: QemuInfo,
    accel: AccelDecision,
  ): Promise<WarmKey> {
    const resolved = await this.cache.ensure(environment);
    const runtime = await this.cache.ensureRuntime();
    return {
      pyro_version: VERSION,
      runtime: runtime.key,
      environment,
      kernel: resolved.manifest.artifacts.kernel.sha256,
      initramfs: resolved.manifest.artifacts.initramfs.sha256,
      rootfs: resolved.manifest.artifacts.rootfs.sha256,
      qemu_version: qemu.version,
      accel: accel.accel,
      vcpu_count: vcpus,
      mem_mib: memMib,
    };
  }

  /** warm (usable now), cold (never prepared) or stale (which key changed, or a damaged file). */
  async state(key: WarmKey): Promise<WarmState> {
    const dir = this.dir(key.environment, key.vcpu_count, key.mem_mib);
    const manifest = readJsonFile<WarmManifest>(path.join(dir, "manifest.json"));
    if (!manifest)
      return {
        state: "cold",
        reason: `${key.environment} was never prepared for ${key.vcpu_count} vCPU / ${key.mem_mib} MiB`,
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
    const memory = path.join(dir, "memory.bin");
    const disk = path.join(dir, "disk.qcow2");
    for (const [file, stored, what] of [
      [memory, manifest.memory, "memory snapshot"],
      [disk, manifest.disk, "disk snapshot"],
    ] as const) {
      if (!(await fileMatches(file, stored, path.join(dir, "verified.json")))) {
        return { state: "stale", changed: [], reason: `the ${what} is missing or damaged` };
      }
    }
    return { state: "warm", manifest, memory, disk };
  }

  /**
   * Save a snapshot from `save`, which writes memory.bin and disk.qcow2 into
   * the directory it is given. Built aside, then renamed into place.
   */
  async store(
    key: WarmKey,
    save: (dir: string) => Promise<void>,
    started: number,
  ): Promise<WarmManifest> {
    ensurePrivateDir(this.root);
    ensurePrivateDir(this.paths.locks);
    const final = this.dir(key.environment, key.vcpu_count, key.mem_mib);
    return withLock(path.join(this.paths.locks, `warm-${path.basename(final)}.lock`), async () => {
      const staging = fs.mkdtempSync(path.join(this.root, `.staging-${process.pid}-`));
      try {
        await save(staging);
        const manifest: WarmManifest = {
          key,
          created_at: new Date().toISOString(),
          prepare_ms: Date.now() - started,
          memory: await describeFile(path.join(staging, "memory.bin")),
          disk: await describeFile(path.join(staging, "disk.qcow2")),
        };
        writeFileAtomic(
          path.join(staging, "manifest.json"),
          `${JSON.stringify(manifest, null, 2)}\n`,
        );
        const old = `${final}.old-${process.pid}`;
        if (fs.existsSync(final)) fs.renameSync(final, old);
        fs.renameSync(staging, final);
        await removeTree(old);
        return manifest;
      } finally {
        await removeTree(staging);
      }
    });
  }

  /** Bytes used by warm snapshots. */
  diskUsageBytes(): number {
    if (!fs.existsSync(this.root)) return 0;
    let total = 0;
    for (const entry of fs.readdirSync(this.root)) {
      const dir = path.join(this.root, entry);
      for (const file of fs.readdirSync(dir)) total += fs.statSync(path.join(dir, file)).size;
    }
    return total;
  }

  /** Remove snapshots that no longer match their environment (or all of them). */
  async prune(keep: (manifest: WarmManifest) => Promise<boolean>): Promise<number> {
    if (!fs.existsSync(this.root)) return 0;
    let freed = 0;
    for (const entry of fs.readdirSync(this.root)) {
      const dir = path.join(this.root, entry);
      const manifest = readJsonFile<WarmManifest>(path.join(dir, "manifest.json"));
      if (manifest && (await keep(manifest))) continue;
      for (const file of fs.existsSync(dir) ? fs.readdirSync(dir) : [])
        freed += fs.statSync(path.join(dir, file)).size;
      await removeTree(dir);
    }
    return freed;
  }
}

async function describeFile(file: string): Promise<StoredFile> {
  return { sha256: await sha256File(file), size: fs.statSync(file).size };
}

function describeKey(key: keyof WarmKey): string {
  const names: Record<keyof WarmKey, string> = {
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
  };
  return names[key];
}
