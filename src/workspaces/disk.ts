/**
 * Disk tools (contract §4 "Disk tools"): a stopped workspace's disk, read
 * offline without booting it. Under the workspace's lock (a start waits),
 * the disk (a qcow2 overlay over the environment's rootfs) becomes a raw
 * copy in a private directory: pyro's temp area for list and read, beside
 * the output for export. Its journal is replayed there, and the copy is
 * read with util/ext4-image.ts, which treats it as hostile.
 *
 * The disk is the guest's whole root filesystem. Paths are guest paths;
 * relative ones are under /workspace. Runtime-only paths are left out: what
 * the guest saw there was never on this disk (tmpfs, pyro's runtime disk).
 */
import fs from "node:fs";
import path from "node:path";
import { ensurePrivateDir } from "../config/paths.js";
import { ErrorCodes, PyroError, isPyroError } from "../errors.js";
import { BOUNDS, DEFAULTS } from "../limits.js";
import { encodeOutput, type OutputEncoding } from "../protocol/command.js";
import type { DirEntry } from "../protocol/messages.js";
import type { WorkspaceRecord } from "../records/store.js";
import { convertOverlayToRaw } from "../util/disk-images.js";
import { Ext4Image, displayName, replayJournal, type Ext4Entry } from "../util/ext4-image.js";
import { DISK_FILE, WORKSPACE_ROOT, type WorkspaceContext } from "./context.js";
import { redactorFor } from "./secrets.js";

/**
 * Mounted over at run time (tmpfs, virtual filesystems, the read-only
 * runtime disk): pyro's own files and /run/pyro-secrets live there.
 */
export const RUNTIME_ONLY_PATHS = ["/dev", "/opt/pyro", "/proc", "/run", "/sys", "/tmp"] as const;

/** Entries one listing returns at most (as many as a file list). */
export const DISK_LIST_MAX_ENTRIES = 10_000;

export interface DiskListing {
  workspace_id: string;
  path: string;
  entries: DirEntry[];
  truncated: boolean;
  /** Runtime-only paths under `path` that were left out. */
  excluded: string[];
}

export interface DiskRead {
  workspace_id: string;
  path: string;
  content: string;
  encoding: OutputEncoding;
  size: number;
  bytes_read: number;
  truncated: boolean;
}

export interface DiskExport {
  workspace_id: string;
  output: string;
  format: "raw";
  filesystem: "ext4";
  /** The image's size (sparse: it takes less room on most filesystems). */
  bytes: number;
  /** The guest's last writes were still in the ext4 journal and were replayed into the export. */
  journal_replayed: boolean;
}

/** The guest path a disk tool's path names: absolute, or relative to /workspace. */
export function diskPath(input: string): string {
  if (input.includes("\0")) throw new PyroError(ErrorCodes.UsageError, "a path cannot hold NUL");
  const candidate = path.posix.isAbsolute(input) ? input : path.posix.join(WORKSPACE_ROOT, input);
  const normal = path.posix.normalize(candidate);
  return normal === "/" ? normal : normal.replace(/\/+$/, "");
}

/** The runtime-only path that covers `guestPath`, if any. */
export function runtimeOnlyRoot(guestPath: string): string | undefined {
  return RUNTIME_ONLY_PATHS.find((root) => guestPath === root || guestPath.startsWith(`${root}/`));
}

function refuseRuntimeOnly(guestPath: string): void {
  const root = runtimeOnlyRoot(guestPath);
  if (root === undefined) return;
  throw new PyroError(ErrorCodes.PathNotAllowed, `${guestPath} is runtime-only (under ${root})`, {
    hint: `the disk tools leave out ${RUNTIME_ONLY_PATHS.join(", ")}: what the guest saw there (tmpfs, pyro's own files, /run/pyro-secrets) is not on its disk`,
  });
}

export async function listDisk(
  ctx: WorkspaceContext,
  idOrName: string,
  guestPath: string = WORKSPACE_ROOT,
  options: { recursive?: boolean } = {},
): Promise<DiskListing> {
  const target = diskPath(guestPath);
  refuseRuntimeOnly(target);
  return withDiskCopy(ctx, idOrName, async (disk, record) => {
    const dir = await resolveEntry(disk, target);
    if (dir.type !== "directory") {
      throw new PyroError(ErrorCodes.UsageError, `${target} is not a directory`, {
        hint: "read a file with disk read",
      });
    }
    const found = await walk(disk, target, dir, options.recursive ?? false);
    return { workspace_id: record.id, path: target, ...found };
  });
}

export async function readDisk(
  ctx: WorkspaceContext,
  idOrName: string,
  guestPath: string,
  options: { maxBytes?: number } = {},
): Promise<DiskRead> {
  const maxBytes = options.maxBytes ?? DEFAULTS.fileReadBytes;
  const { min, max } = BOUNDS.fileReadBytes;
  if (!Number.isInteger(maxBytes) || maxBytes < min || maxBytes > max) {
    throw new PyroError(
      ErrorCodes.UsageError,
      `max bytes must be an integer from ${min} to ${max}, got ${maxBytes}`,
    );
  }
  const target = diskPath(guestPath);
  refuseRuntimeOnly(target);
  return withDiskCopy(ctx, idOrName, async (disk, record) => {
    const entry = await resolveEntry(disk, target);
    if (entry.type !== "file") {
      throw new PyroError(ErrorCodes.UsageError, `${target} is not a regular file`, {
        hint: entry.type === "directory" ? "list a directory with disk list" : undefined,
      });
    }
    const bytes = await disk.read(entry, maxBytes);
    const truncated = entry.size > bytes.length;
    // Redacted as bytes, before content that is not UTF-8 becomes base64.
    const content = redactorFor(ctx, record).redactBytes(bytes, { cut: truncated });
    const { text, encoding } = encodeOutput(content);
    return {
      workspace_id: record.id,
      path: target,
      content: text,
      encoding,
      size: entry.size,
      bytes_read: bytes.length,
      truncated,
    };
  });
}

/** The whole disk as a raw ext4 image at `output`, which must not exist yet. */
export async function exportDisk(
  ctx: WorkspaceContext,
  idOrName: string,
  output: string,
): Promise<DiskExport> {
  const record = ctx.store.resolve(idOrName);
  const destination = path.resolve(output);
  const exists = () =>
    new PyroError(ErrorCodes.Conflict, `${destination} already exists`, {
      hint: "choose an output path that does not exist yet",
    });
  if (fs.existsSync(destination)) throw exists();
  const parent = path.dirname(destination);
  ensurePrivateDir(parent);
  // Staged beside the output so that it appears there whole, by a link.
  const staging = fs.mkdtempSync(path.join(parent, ".pyro-disk-export-"));
  try {
    const raw = path.join(staging, "disk.raw");
    await copyStoppedDisk(ctx, record, raw);
    const replayed = await replayJournal(raw, staging);
    fs.chmodSync(raw, 0o600);
    const bytes = fs.statSync(raw).size;
    try {
      fs.linkSync(raw, destination); // never replaces a file that appeared meanwhile
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") throw exists();
      if (fs.existsSync(destination)) throw exists();
      fs.renameSync(raw, destination); // a filesystem without hard links
    }
    ctx.recordEvent(record.id, { kind: "export", path: "/", output: destination, bytes });
    await ctx.touch(record.id);
    return {
      workspace_id: record.id,
      output: destination,
      format: "raw",
      filesystem: "ext4",
      bytes,
      journal_replayed: replayed,
    };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/** Run `fn` on a raw copy of a stopped workspace's disk, in a private directory removed after. */
async function withDiskCopy<T>(
  ctx: WorkspaceContext,
  idOrName: string,
  fn: (disk: Ext4Image, record: WorkspaceRecord) => Promise<T>,
): Promise<T> {
  const record = ctx.store.resolve(idOrName);
  ensurePrivateDir(ctx.paths.tmp);
  // Named like the cache's build directories, so a killed reader's copy is cleaned up (pid gone).
  const workDir = fs.mkdtempSync(path.join(ctx.paths.tmp, `disk-${process.pid}-`));
  try {
    const raw = path.join(workDir, "disk.raw");
    const current = await copyStoppedDisk(ctx, record, raw);
    await replayJournal(raw, workDir);
    const result = await fn(new Ext4Image(raw, workDir), current);
    await ctx.touch(record.id);
    return result;
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

/** Copy the disk to `output` (raw) under the workspace's lock, if the workspace is stopped. */
async function copyStoppedDisk(
  ctx: WorkspaceContext,
  record: WorkspaceRecord,
  output: string,
): Promise<WorkspaceRecord> {
  return ctx.store.locked(record.id, async () => {
    const current = ctx.store.read(record.id);
    if (!current) {
      throw new PyroError(ErrorCodes.WorkspaceNotFound, `workspace ${record.id} was deleted`);
    }
    const label = current.name ?? current.id;
    if (current.state !== "stopped" && current.state !== "failed") throw notStopped(current);
    const disk = ctx.store.file(current.id, DISK_FILE);
    if (!fs.existsSync(disk)) {
      throw new PyroError(
        ErrorCodes.DiskUnreadable,
        `workspace ${label} has no disk (its create or reset did not finish)`,
        { fix: { kind: "start_workspace", workspace: label } },
      );
    }
    try {
      await convertOverlayToRaw(disk, ctx.cache.blobPath(current.rootfs_blob), output, {
        errorCode: ErrorCodes.DiskUnreadable,
      });
    } catch (error) {
      // QEMU's image lock: a VM (one that outlived its supervisor) still has the disk open.
      if (isPyroError(error) && /Failed to get .*lock/.test(error.message)) {
        throw notStopped(current, "still has a VM holding its disk open");
      }
      throw error;
    }
    return current;
  });
}

function notStopped(record: WorkspaceRecord, why = `is ${record.state}`): PyroError {
  const label = record.name ?? record.id;
  return new PyroError(
    ErrorCodes.WorkspaceState,
    `workspace ${label} ${why}: the disk tools read a stopped workspace's disk`,
    { fix: { kind: "stop_workspace", workspace: label } },
  );
}

/** The entry at an absolute guest path; symlinks are named, never followed. */
async function resolveEntry(disk: Ext4Image, target: string): Promise<Ext4Entry> {
  const components = target.split("/").filter(Boolean);
  const found = await disk.lookup(components);
  if (!found) {
    throw new PyroError(ErrorCodes.FileNotFound, `${target} does not exist on the disk`);
  }
  const { entry, rest } = found;
  const at = `/${components.slice(0, components.length - rest.length).join("/")}`;
  if (entry.type === "symlink") {
    const bytes = (await disk.readLinks([entry])).get(entry.inode);
    const link = bytes === undefined ? undefined : displayName(bytes);
    // Worked out by name only, as a suggestion: the next call walks it again.
    const meant =
      link === undefined
        ? undefined
        : path.posix.join(path.posix.resolve(path.posix.dirname(at), link), ...rest);
    throw new PyroError(
      ErrorCodes.PathNotAllowed,
      `${at} is a symlink${link === undefined ? "" : ` to ${link}`}`,
      {
        hint: `the disk tools do not follow symlinks: give the path it points to${meant ? ` (${meant})` : ""}`,
      },
    );
  }
  if (rest.length > 0) {
    throw new PyroError(
      ErrorCodes.FileNotFound,
      `${at} is not a directory, so ${target} does not exist`,
    );
  }
  return entry;
}

/** A directory's entries (breadth first when recursive), bounded, runtime-only paths left out. */
async function walk(
  disk: Ext4Image,
  target: string,
  dir: Ext4Entry,
  recursive: boolean,
): Promise<Pick<DiskListing, "entries" | "truncated" | "excluded">> {
  const entries: DirEntry[] = [];
  const links: { entry: DirEntry; link: Ext4Entry }[] = [];
  const excluded = new Set<string>();
  // A directory hard-linked into its own subtree (a crafted image) is listed once.
  const seen = new Set<number>([dir.inode]);
  let truncated = false;
  let level = [{ inode: dir.inode, rel: "" }];
  while (level.length > 0 && !truncated) {
    const listings = await disk.listDirs(level.map((d) => d.inode));
    const next: typeof level = [];
    for (const { inode, rel } of level) {
      const listing = listings.get(inode)!;
      if (listing.error && inode === dir.inode) {
        throw new PyroError(ErrorCodes.DiskUnreadable, `${target} is unreadable: ${listing.error}`);
      }
      truncated ||= listing.truncated;
      const named = listing.entries
        .map((e) => ({ e, name: displayName(e.name) }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const { e, name } of named) {
        const relPath = rel ? `${rel}/${name}` : name;
        const full = target === "/" ? `/${relPath}` : `${target}/${relPath}`;
        if (runtimeOnlyRoot(full) !== undefined) {
          excluded.add(full);
          continue;
        }
        if (entries.length >= DISK_LIST_MAX_ENTRIES) {
          truncated = true;
          break;
        }
        const entry: DirEntry = {
          path: relPath,
          type: e.type,
          size: e.size,
          mode: e.mode & 0o7777,
        };
        entries.push(entry);
        if (e.type === "symlink") links.push({ entry, link: e });
        if (recursive && e.type === "directory" && !seen.has(e.inode)) {
          seen.add(e.inode);
          next.push({ inode: e.inode, rel: relPath });
        }
      }
      if (truncated) break;
    }
    level = next;
  }
  const targets = await disk.readLinks(links.map((l) => l.link));
  for (const { entry, link } of links) {
    const target = targets.get(link.inode);
    if (target !== undefined) entry.link_target = displayName(target);
  }
  return { entries, truncated, excluded: [...excluded].sort() };
}
