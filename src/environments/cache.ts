/**
 * The content-addressed environment cache.
 *
 *   cache/blobs/sha256/<hex>               artifacts, read-only, shared by entries
 *   cache/environments/<slug>/manifest.json one manifest per installed environment
 *   cache/environments/<slug>/verified.json  stat stamps of the last full hash check
 *   cache/tmp/<slug>-<pid>-…                builds in progress
 *   cache/locks/<slug>.lock                 one build of an environment at a time
 *
 * A manifest is written last, atomically, after every blob is in place, so an
 * interrupted pull leaves no entry that looks valid. Every use checks each
 * artifact: a cheap stat stamp, or a full sha256 when the stamp does not
 * match. An entry with a missing or corrupt artifact is never booted.
 */
import fs from "node:fs";
import path from "node:path";
import {
  ensurePrivateDir,
  readJsonFile,
  writeFileAtomic,
  type PyroPaths,
} from "../config/paths.js";
import { ErrorCodes, PyroError } from "../errors.js";
import { ensureGuestNode, presentGuestNode } from "./guest-node.js";
import { runtimeFiles, type RuntimeFile } from "./runtime-disk.js";
import { RUNTIME_LABEL } from "../vm/boot-scripts.js";
import { buildExt4Image } from "../util/disk-images.js";
import { removeTree, unmountUnder } from "../util/mounts.js";
import { fileMatches, sha256, sha256File, sha256FileMemo } from "../util/hash.js";
import { withLock } from "../util/lock.js";
import { processAlive, processesMentioning } from "../util/procs.js";
import { silentProgress, type ProgressFn } from "../util/progress.js";
import { buildEnvironment, type PackageVersion } from "./build.js";
import {
  CATALOG,
  CATALOG_VERSION,
  RECIPE_REVISION,
  DEBIAN_SUITE,
  environmentSlug,
  findCatalogEntry,
} from "./catalog.js";

export type ArtifactName = "kernel" | "initramfs" | "rootfs";

export interface Artifact {
  sha256: string;
  size: number;
}

export interface EnvironmentManifest {
  name: string;
  version: string;
  /** RECIPE_REVISION it was built with (absent: revision 1). */
  recipe?: number;
  debian_suite: string;
  built_at: string;
  build_seconds: number;
  kernel_release: string;
  kernel_package: PackageVersion;
  packages: PackageVersion[];
  artifacts: Record<ArtifactName, Artifact>;
}

export interface ResolvedEnvironment {
  name: string;
  manifest: EnvironmentManifest;
  kernel: string;
  initramfs: string;
  rootfs: string;
  /** Not in the cache when asked: this call built it (or waited for another process's build). */
  built?: boolean;
}

export interface ResolvedRuntime {
  key: string;
  image: string;
  /** This call fetched the guest's Node or built the runtime disk first. */
  built?: boolean;
}

export type EnvironmentState = "installed" | "not_installed" | "stale" | "corrupt";

/** Built by this catalog version with this recipe: anything else is rebuilt. */
export function isCurrent(manifest: EnvironmentManifest): boolean {
  return manifest.version === CATALOG_VERSION && (manifest.recipe ?? 1) === RECIPE_REVISION;
}

export class EnvironmentCache {
  constructor(private readonly paths: PyroPaths) {}

  blobPath(hex: string): string {
    return path.join(this.paths.blobs, hex);
  }

  private entryDir(name: string): string {
    return path.join(this.paths.environments, environmentSlug(name));
  }

  readManifest(name: string): EnvironmentManifest | undefined {
    return readJsonFile<EnvironmentManifest>(path.join(this.entryDir(name), "manifest.json"));
  }

  /** installed / not_installed / stale (other catalog version or recipe) / corrupt (an artifact is missing or wrong). */
  async state(name: string): Promise<EnvironmentState> {
    const manifest = this.readManifest(name);
    if (!manifest) return "not_installed";
    if (!isCurrent(manifest)) return "stale";
    return (await this.verify(name, manifest)) ? "installed" : "corrupt";
  }

  /** Check every artifact of an entry; a full sha256 only when its stat stamp changed. */
  async verify(name: string, manifest: EnvironmentManifest): Promise<boolean> {
    const memoFile = path.join(this.entryDir(name), "verified.json");
    for (const artifact of Object.values(manifest.artifacts)) {
      if (!(await fileMatches(this.blobPath(artifact.sha256), artifact, memoFile))) return false;
    }
    return true;
  }

  /** The environment ready to boot: verified from the cache, else built now. */
  async ensure(
    name: string,
    progress: ProgressFn = silentProgress,
    options: { force?: boolean } = {},
  ): Promise<ResolvedEnvironment> {
    const entry = findCatalogEntry(name);
    if (!options.force) {
      const ready = await this.resolveIfValid(name);
      if (ready) return ready;
    }
    ensurePrivateDir(this.paths.locks);
    return withLock(
      path.join(this.paths.locks, `${environmentSlug(name)}.lock`),
      async () => {
        // Another process may have finished the same pull while we waited (this call still waited for it).
        if (!options.force) {
          const ready = await this.resolveIfValid(name);
          if (ready) return { ...ready, built: true };
        }
        const state = await this.state(name);
        if (state === "corrupt") progress(`${name}: cache entry is corrupt; rebuilding`);
        if (state === "stale")
          progress(`${name}: cache entry is from another version or recipe; rebuilding`);
        await this.build(entry.name, progress);
        const ready = await this.resolveIfValid(name);
        if (!ready)
          throw new PyroError(
            ErrorCodes.EnvironmentBuildFailed,
            `${name} failed verification right after its build`,
          );
        return { ...ready, built: true };
      },
      {
        what: `the build of ${name}`,
        onWait: () => progress(`${name}: waiting for another pyro process building it`),
      },
    );
  }

  private async resolveIfValid(name: string): Promise<ResolvedEnvironment | undefined> {
    const manifest = this.readManifest(name);
    if (!manifest || !isCurrent(manifest)) return undefined;
    if (!(await this.verify(name, manifest))) return undefined;
    return {
      name,
      manifest,
      kernel: this.blobPath(manifest.artifacts.kernel.sha256),
      initramfs: this.blobPath(manifest.artifacts.initramfs.sha256),
      rootfs: this.blobPath(manifest.artifacts.rootfs.sha256),
    };
  }

  private async build(name: string, progress: ProgressFn): Promise<void> {
    const entry = findCatalogEntry(name);
    ensurePrivateDir(this.paths.tmp);
    this.cleanAbandonedBuilds();
    const workDir = fs.mkdtempSync(
      path.join(this.paths.tmp, `${environmentSlug(name)}-${process.pid}-`),
    );
    const started = Date.now();
    try {
      const built = await buildEnvironment(entry, workDir, progress);
      progress(`${name}: hashing artifacts`);
      const artifacts = {
        kernel: await this.storeBlob(built.kernel),
        initramfs: await this.storeBlob(built.initramfs),
        rootfs: await this.storeBlob(built.rootfs),
      };
      const manifest: EnvironmentManifest = {
        name,
        version: CATALOG_VERSION,
        recipe: RECIPE_REVISION,
        debian_suite: DEBIAN_SUITE,
        built_at: new Date().toISOString(),
        build_seconds: Math.round((Date.now() - started) / 100) / 10,
        kernel_release: built.kernelRelease,
        kernel_package: built.kernelPackage,
        packages: built.packages,
        artifacts,
      };
      const dir = ensurePrivateDir(this.entryDir(name));
      fs.rmSync(path.join(dir, "verified.json"), { force: true });
      writeFileAtomic(path.join(dir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
      progress(`${name}: ready\n`);
    } finally {
      await removeTree(workDir);
    }
  }

  /** Move a finished artifact into the blob store under its own hash. */
  private async storeBlob(file: string): Promise<Artifact> {
    ensurePrivateDir(this.paths.blobs);
    const hex = await sha256File(file);
    const size = fs.statSync(file).size;
    const target = this.blobPath(hex);
    if (
      fs.existsSync(target) &&
      fs.statSync(target).size === size &&
      (await sha256File(target)) === hex
    ) {
      fs.rmSync(file);
    } else {
      fs.chmodSync(file, 0o444);
      fs.renameSync(file, target);
    }
    return { sha256: hex, size };
  }

  /** Remove build directories whose builder process is gone (killed mid-pull). */
  cleanAbandonedBuilds(): string[] {
    const removed: string[] = [];
    if (!fs.existsSync(this.paths.tmp)) return removed;
    for (const name of fs.readdirSync(this.paths.tmp)) {
      const pid = Number(/-(\d+)-[^-]+$/.exec(name)?.[1]);
      const dir = path.join(this.paths.tmp, name);
      // The builder is gone, but tools it started (mmdebstrap winding down) may still work in the tree.
      if (processAlive(pid) || processesMentioning(dir).length > 0) continue;
      try {
        // A killed mmdebstrap may leave /proc, /sys or /dev mounted inside its tree: never recurse into those.
        unmountUnder(dir);
        fs.rmSync(dir, { recursive: true, force: true });
        removed.push(name);
      } catch {
        // Left for the next pull or prune; it never blocks a build, which uses its own directory.
      }
    }
    return removed;
  }

  /**
   * The /opt/pyro runtime disk, keyed by the content of what goes on it.
   * Built once per pyro build; shared by every environment.
   */
  async ensureRuntime(progress: ProgressFn = silentProgress): Promise<ResolvedRuntime> {
    const fetched = presentGuestNode(this.paths.hostCache) === undefined;
    const files = runtimeFiles(await ensureGuestNode(this.paths.hostCache, progress));
    const key = await this.runtimeKey(files);
    const indexFile = path.join(this.paths.environments, "runtime", `${key}.json`);
    const existing = readJsonFile<Artifact>(indexFile);
    if (existing && this.blobIntact(existing))
      return { key, image: this.blobPath(existing.sha256), built: fetched };
    ensurePrivateDir(this.paths.locks);
    return withLock(path.join(this.paths.locks, "runtime.lock"), async () => {
      const again = readJsonFile<Artifact>(indexFile);
      if (again && this.blobIntact(again))
        return { key, image: this.blobPath(again.sha256), built: true };
      progress("building the guest runtime disk");
      ensurePrivateDir(this.paths.tmp);
      const workDir = fs.mkdtempSync(path.join(this.paths.tmp, `runtime-${process.pid}-`));
      try {
        const tree = path.join(workDir, "tree");
        let bytes = 0;
        for (const file of files) {
          const target = path.join(tree, file.target);
          fs.mkdirSync(path.dirname(target), { recursive: true });
          if ("file" in file.source) fs.copyFileSync(file.source.file, target);
          else fs.writeFileSync(target, file.source.content);
          fs.chmodSync(target, file.mode);
          bytes += fs.statSync(target).size;
        }
        const image = path.join(workDir, "runtime.img");
        const sizeMib = Math.ceil((bytes * 1.15) / 1048576) + 16;
        await buildExt4Image(tree, image, undefined, RUNTIME_LABEL, sizeMib);
        const artifact = await this.storeBlob(image);
        ensurePrivateDir(path.dirname(indexFile));
        writeFileAtomic(indexFile, JSON.stringify(artifact));
        return { key, image: this.blobPath(artifact.sha256), built: true };
      } finally {
        await removeTree(workDir);
      }
    });
  }

  private blobIntact(artifact: Artifact): boolean {
    try {
      return fs.statSync(this.blobPath(artifact.sha256)).size === artifact.size;
    } catch {
      return false;
    }
  }

  /** sha256 of a host file, remembered by stat so the 100 MB node binary is hashed once. */
  private cachedFileHash(file: string): Promise<string> {
    return sha256FileMemo(file, path.join(this.paths.hostCache, "file-hashes.json"));
  }

  /** Sum of blob sizes referenced by an entry. */
  entrySizeBytes(manifest: EnvironmentManifest): number {
    return Object.values(manifest.artifacts).reduce((sum, a) => sum + a.size, 0);
  }

  /**
   * Remove what nothing needs: entries of other catalog versions, abandoned
   * builds, blobs no manifest references, and (with `all`) every installed
   * environment not in `inUse`. Blobs in `keepBlobs` are never removed.
   */
  async prune(
    options: { all?: boolean; inUse?: Set<string>; keepBlobs?: Set<string> } = {},
  ): Promise<{ removed_environments: string[]; removed_blobs: number; freed_bytes: number }> {
    const removedEnvironments: string[] = [];
    this.cleanAbandonedBuilds();
    for (const entry of CATALOG) {
      const manifest = this.readManifest(entry.name);
      if (!manifest) continue;
      const stale = !isCurrent(manifest);
      if (stale || (options.all && !options.inUse?.has(entry.name))) {
        fs.rmSync(this.entryDir(entry.name), { recursive: true, force: true });
        removedEnvironments.push(entry.name);
      }
    }
    // Workspace disks are overlays over a rootfs blob: those blobs stay as long as the workspace does.
    const referenced = new Set<string>(options.keepBlobs ?? []);
    for (const entry of CATALOG) {
      const manifest = this.readManifest(entry.name);
      if (manifest)
        for (const artifact of Object.values(manifest.artifacts)) referenced.add(artifact.sha256);
    }
    const runtimeDir = path.join(this.paths.environments, "runtime");
    const currentRuntime = await this.currentRuntimeKey();
    if (fs.existsSync(runtimeDir)) {
      for (const file of fs.readdirSync(runtimeDir)) {
        const artifact = readJsonFile<Artifact>(path.join(runtimeDir, file));
        if (file === `${currentRuntime}.json` && artifact) referenced.add(artifact.sha256);
        else fs.rmSync(path.join(runtimeDir, file), { force: true });
      }
    }
    let removedBlobs = 0;
    let freed = 0;
    if (fs.existsSync(this.paths.blobs)) {
      for (const hex of fs.readdirSync(this.paths.blobs)) {
        if (referenced.has(hex)) continue;
        const file = this.blobPath(hex);
        freed += fs.statSync(file).size;
        fs.rmSync(file, { force: true });
        removedBlobs += 1;
      }
    }
    return {
      removed_environments: removedEnvironments,
      removed_blobs: removedBlobs,
      freed_bytes: freed,
    };
  }

  /** The key the runtime disk of this pyro build has, without building it. */
  async currentRuntimeKey(): Promise<string | undefined> {
    try {
      const node = presentGuestNode(this.paths.hostCache);
      return node ? await this.runtimeKey(runtimeFiles(node)) : undefined;
    } catch {
      return undefined;
    }
  }

  private async runtimeKey(files: RuntimeFile[]): Promise<string> {
    const parts = await Promise.all(
      files.map(async (f) => [
        f.target,
        f.mode,
        "file" in f.source ? await this.cachedFileHash(f.source.file) : sha256(f.source.content),
      ]),
    );
    return sha256(JSON.stringify(parts)).slice(0, 32);
  }

  /** Bytes used by the blob store. */
  diskUsageBytes(): number {
    if (!fs.existsSync(this.paths.blobs)) return 0;
    return fs
      .readdirSync(this.paths.blobs)
      .reduce((sum, hex) => sum + fs.statSync(this.blobPath(hex)).size, 0);
  }
}
