/**
 * Where pyro keeps its state (contract §10): everything under $PYRO_HOME if
 * set, else the XDG data and cache directories. All of it owner-only.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export interface PyroPaths {
  /** Durable state: VMs, workspaces. */
  data: string;
  /** Rebuildable state: environments, host probes. */
  cache: string;
  environments: string;
  blobs: string;
  locks: string;
  tmp: string;
  vms: string;
  hostCache: string;
}

export function resolvePaths(env: NodeJS.ProcessEnv = process.env): PyroPaths {
  let data: string;
  let cache: string;
  if (env.PYRO_HOME) {
    data = path.resolve(env.PYRO_HOME);
    cache = path.join(data, "cache");
  } else {
    const home = os.homedir();
    data = path.join(env.XDG_DATA_HOME || path.join(home, ".local", "share"), "pyro");
    cache = path.join(env.XDG_CACHE_HOME || path.join(home, ".cache"), "pyro");
  }
  return {
    data,
    cache,
    environments: path.join(cache, "environments"),
    blobs: path.join(cache, "blobs", "sha256"),
    locks: path.join(cache, "locks"),
    tmp: path.join(cache, "tmp"),
    vms: path.join(data, "vms"),
    hostCache: path.join(cache, "host"),
  };
}

/** mkdir -p with owner-only permissions. */
export function ensurePrivateDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/**
 * Write a file atomically (temp file, fsync, rename) with owner-only
 * permissions. `durable: false` skips the fsync: the rename still makes the
 * write all or nothing for any reader and survives a killed process; only an
 * OS crash may lose it (for bookkeeping written on every command).
 */
export function writeFileAtomic(
  file: string,
  content: string | Buffer,
  mode = 0o600,
  options: { durable?: boolean } = {},
): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const fd = fs.openSync(tmp, "wx", mode);
  try {
    try {
      // The umask narrows open's mode: a file rewritten in place keeps exactly its own.
      fs.fchmodSync(fd, mode);
      fs.writeFileSync(fd, content);
      if (options.durable !== false) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw error;
  }
}

/** Read and parse a JSON file; undefined if it is missing or unreadable as JSON. */
export function readJsonFile<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as T;
  } catch {
    return undefined;
  }
}
