/**
 * Tar archives on the host side, where the guest and user archives are
 * untrusted: extraction never writes outside its target. Absolute paths,
 * `..`, hard links, devices and FIFOs are skipped, and so are symlinks whose
 * target would leave the extraction root.
 */
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadEntry } from "tar";

const SAFE_TYPES = new Set(["File", "OldFile", "ContiguousFile", "Directory", "SymbolicLink"]);

export interface SkippedEntry {
  path: string;
  reason: string;
}

/** Why an entry must not be extracted under a root, or undefined if it is fine. */
export function unsafeEntryReason(
  entryPath: string,
  type: string,
  linkpath: string | undefined,
): string | undefined {
  if (!SAFE_TYPES.has(type)) return `${type} entries are not extracted`;
  const normal = path.posix.normalize(entryPath.replace(/\\/g, "/"));
  if (path.posix.isAbsolute(entryPath) || normal.startsWith("../") || normal === "..") {
    return "path leaves the target directory";
  }
  if (type === "SymbolicLink") {
    if (!linkpath || path.posix.isAbsolute(linkpath)) return "symlink to an absolute path";
    const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(normal), linkpath));
    if (resolved === ".." || resolved.startsWith("../"))
      return "symlink pointing outside the target directory";
  }
  return undefined;
}

/**
 * Extract an archive (file path, buffer or stream; gzip detected) into
 * `dest`, which must exist. Returns what was skipped and why.
 */
export async function safeExtract(
  source: string | Buffer | Readable,
  dest: string,
): Promise<SkippedEntry[]> {
  const skipped: SkippedEntry[] = [];
  const tar = await import("tar"); // loaded when needed: `pyro workspace exec` never needs it
  const extractor = tar.x({
    cwd: dest,
    strict: false,
    preservePaths: false,
    preserveOwner: false,
    noChmod: false,
    // Keep the archive's modes (pyro's own umask is 077), minus group/other write.
    umask: 0o022,
    filter: (entryPath, entry) => {
      const stat = entry as ReadEntry;
      const reason = unsafeEntryReason(entryPath, stat.type, stat.linkpath);
      if (reason) skipped.push({ path: entryPath.slice(0, 4096), reason });
      return reason === undefined;
    },
    onwarn: (_code, message, data) => {
      const where = (data ?? {}) as { path?: string; entry?: { path?: string } };
      skipped.push({
        path: String(where.path ?? where.entry?.path ?? "").slice(0, 4096),
        reason: String(message).slice(0, 500),
      });
    },
  });
  const input =
    typeof source === "string"
      ? fs.createReadStream(source)
      : Buffer.isBuffer(source)
        ? Readable.from([source])
        : source;
  await pipeline(input, extractor);
  return skipped;
}

/**
 * Pack files (paths relative to `cwd`) into a tar file; no owners, symlinks
 * stored as links. With `recurse: false` a directory is packed as an entry
 * only (the list names what goes in it).
 */
export async function packFiles(
  cwd: string,
  files: string[],
  output: string,
  options: { recurse?: boolean } = {},
): Promise<void> {
  const tar = await import("tar");
  await tar.c(
    { cwd, file: output, portable: true, follow: false, noDirRecurse: options.recurse === false },
    files,
  );
}

/** Files (not directories) under `dir`, counted without following symlinks. */
export function countFiles(dir: string): number {
  let count = 0;
  const walk = (current: string) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(path.join(current, entry.name));
      else count += 1;
    }
  };
  walk(dir);
  return count;
}

/** A tar archive with no entries: just the two zero blocks that end one. */
export const EMPTY_TAR = Buffer.alloc(1024);

/** Does the tar archive at `file` hold no entries (its first header block is all zeros)? */
export function isEmptyTar(file: string): boolean {
  const fd = fs.openSync(file, "r");
  try {
    const header = Buffer.alloc(512);
    const read = fs.readSync(fd, header, 0, 512, 0);
    return read === 0 || header.subarray(0, read).every((byte) => byte === 0);
  } finally {
    fs.closeSync(fd);
  }
}
