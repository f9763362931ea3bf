/**
 * The environment operations behind `pyro env list|pull|inspect|prune`.
 */
import type { EnvironmentCache, EnvironmentManifest, EnvironmentState } from "./cache.js";
import { CATALOG, CATALOG_VERSION, DEFAULT_ENVIRONMENT, findCatalogEntry } from "./catalog.js";
import type { ProgressFn } from "../util/progress.js";

export interface EnvironmentInfo {
  name: string;
  description: string;
  version: string;
  default: boolean;
  state: EnvironmentState;
  installed: boolean;
  size_bytes: number | null;
}

export interface PullResult {
  name: string;
  version: string;
  /** True when the cache already held a valid entry and nothing was built. */
  cached: boolean;
  duration_ms: number;
  size_bytes: number;
}

export interface EnvironmentInspection extends EnvironmentInfo {
  manifest: EnvironmentManifest | null;
  catalog_packages: string[];
}

export interface PruneResult {
  removed_environments: string[];
  removed_blobs: number;
  freed_bytes: number;
}

export async function listEnvironments(cache: EnvironmentCache): Promise<EnvironmentInfo[]> {
  return Promise.all(CATALOG.map((entry) => describeEnvironment(cache, entry.name)));
}

/** One catalog environment and its cache state (an unknown name is an error naming the catalog). */
export async function describeEnvironment(
  cache: EnvironmentCache,
  name: string,
): Promise<EnvironmentInfo> {
  const entry = findCatalogEntry(name);
  const state = await cache.state(name);
  const manifest = cache.readManifest(name);
  return {
    name,
    description: entry.description,
    version: CATALOG_VERSION,
    default: name === DEFAULT_ENVIRONMENT,
    state,
    installed: state === "installed",
    size_bytes: manifest && state === "installed" ? cache.entrySizeBytes(manifest) : null,
  };
}

export async function pullEnvironment(
  cache: EnvironmentCache,
  name: string,
  progress: ProgressFn,
  options: { force?: boolean } = {},
): Promise<PullResult> {
  findCatalogEntry(name);
  const started = Date.now();
  const wasInstalled = !options.force && (await cache.state(name)) === "installed";
  const resolved = await cache.ensure(name, progress, options);
  await cache.ensureRuntime(progress);
  return {
    name,
    version: resolved.manifest.version,
    cached: wasInstalled,
    duration_ms: Date.now() - started,
    size_bytes: cache.entrySizeBytes(resolved.manifest),
  };
}

export async function inspectEnvironment(
  cache: EnvironmentCache,
  name: string,
): Promise<EnvironmentInspection> {
  const info = await describeEnvironment(cache, name);
  return {
    ...info,
    manifest: cache.readManifest(name) ?? null,
    catalog_packages: findCatalogEntry(name).packages,
  };
}
