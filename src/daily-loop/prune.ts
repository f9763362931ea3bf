/**
 * `pyro env prune`: reclaim cache space without breaking anything that is
 * still in use. Warm images that no longer match their environment go
 * first; then environment entries and blobs, keeping every blob a workspace
 * disk or a remaining warm image is an overlay of.
 */
import type { PyroPaths } from "../config/paths.js";
import type { EnvironmentCache } from "../environments/cache.js";
import type { PruneResult } from "../environments/service.js";
import { findQemu, type QemuInfo } from "../vm/qemu.js";
import { stopSlotStandby } from "../supervisor/standby-pool.js";
import type { WorkspaceStore } from "../records/store.js";
import { shapeOfKey, WarmImages, type WarmManifest } from "../boot/warm-image.js";

export async function pruneCaches(
  paths: PyroPaths,
  cache: EnvironmentCache,
  store: WorkspaceStore,
  options: { all?: boolean } = {},
): Promise<PruneResult & { freed_warm_bytes: number }> {
  const workspaces = store.all();
  const inUse = new Set(workspaces.map((w) => w.environment));
  const warm = new WarmImages(paths, cache);
  const qemu = findQemu(paths.hostCache);
  const kept: string[] = [];
  const freedWarm = await warm.prune(async (manifest) => {
    let keep: boolean;
    if (options.all) keep = false;
    else if (!qemu)
      keep = true; // cannot judge without QEMU: keep
    else keep = await isCurrent(paths, cache, warm, qemu, manifest);
    if (keep) kept.push(manifest.key.rootfs);
    else {
      // Its standby VM came from this snapshot: nothing should take it over any more.
      stopSlotStandby(paths, shapeOfKey(manifest.key));
    }
    return keep;
  });
  const result = await cache.prune({
    ...options,
    inUse,
    keepBlobs: new Set([...workspaces.map((w) => w.rootfs_blob), ...kept]),
  });
  return { ...result, freed_bytes: result.freed_bytes + freedWarm, freed_warm_bytes: freedWarm };
}

/** Would this snapshot be used for a create right now? */
async function isCurrent(
  paths: PyroPaths,
  cache: EnvironmentCache,
  warm: WarmImages,
  qemu: QemuInfo,
  manifest: WarmManifest,
): Promise<boolean> {
  const shape = shapeOfKey(manifest.key);
  if ((await cache.state(shape.environment)) !== "installed") return false;
  const { key } = await warm.currentKeyFor(shape, qemu);
  const state = await warm.state(key);
  return state.state === "warm";
}
