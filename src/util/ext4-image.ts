/**
 * Reading an ext4 image offline, the image treated as hostile (a guest wrote
 * it). debugfs (e2fsprogs) opens it read-only and runs only `ls`, `stat` and
 * `cat`, which write nothing but their stdout; paths are walked here, inode
 * by inode, so debugfs never parses a path and follows no symlink; every run
 * is bounded in time and output. The worst an image can do is lie about
 * its own content, or fail to be read.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, PyroError } from "../errors.js";
import { findExecutable } from "./which.js";

export const ROOT_INODE = 2;

export type Ext4EntryType = "file" | "directory" | "symlink" | "other";

export interface Ext4Entry {
  /** The name's bytes as stored (any bytes but NUL and "/", in a sane image). */
  name: Buffer;
  inode: number;
  /** The inode's i_mode: type and permission bits. */
  mode: number;
  size: number;
  type: Ext4EntryType;
}

export interface Ext4Listing {
  entries: Ext4Entry[];
  /** The directory had more than the output bound allowed. */
  truncated: boolean;
  /** What debugfs said when it could not read the directory. */
  error?: string;
}

/** What the superblock says about the journal, read here before any tool sees the image. */
export interface Ext4Superblock {
  needsRecovery: boolean;
  /** The journal is another device: e2fsck would go looking for it on the host. */
  externalJournal: boolean;
}

/** Bytes of debugfs output one run may produce before it is killed. */
const OUTPUT_LIMIT = 16 * 1024 * 1024;
/** The longest symlink target read (Linux's PATH_MAX). */
const LINK_LIMIT = 4096;
/** Directories listed by one debugfs run. */
const BATCH = 256;
const TIMEOUT_MS = 120_000;

/** Nothing from the caller's environment: no pager, no host e2fsck.conf, no libmagic on guest data. */
const TOOL_ENV = {
  PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
  LC_ALL: "C",
  TZ: "UTC",
  DEBUGFS_PAGER: "__none__",
  PAGER: "__none__",
  E2FSCK_CONFIG: "/dev/null",
  E2FSPROGS_LIBMAGIC_SUPPRESS: "1",
};

function unreadable(message: string): PyroError {
  return new PyroError(ErrorCodes.DiskUnreadable, message);
}

export function readSuperblock(image: string): Ext4Superblock {
  const sb = Buffer.alloc(1024);
  const fd = fs.openSync(image, "r");
  try {
    if (fs.readSync(fd, sb, 0, 1024, 1024) < 1024) throw unreadable("the disk holds no filesystem");
  } finally {
    fs.closeSync(fd);
  }
  if (sb.readUInt16LE(0x38) !== 0xef53) throw unreadable("the disk holds no ext4 filesystem");
  const compat = sb.readUInt32LE(0x5c);
  const incompat = sb.readUInt32LE(0x60);
  if (incompat & 0x8) throw unreadable("the disk is an ext4 journal device, not a filesystem");
  const hasJournal = (compat & 0x4) !== 0;
  const journalUuidSet = sb.subarray(0xd0, 0xe0).some((b) => b !== 0);
  const journalInode = sb.readUInt32LE(0xe0);
  return {
    needsRecovery: (incompat & 0x4) !== 0,
    externalJournal: hasJournal && (journalUuidSet || journalInode === 0),
  };
}

/**
 * Replay the journal into the image (what a mount would do first), so what
 * the guest last synced is seen; e2fsck writes to this image only. Returns
 * whether there was anything to replay.
 */
export async function replayJournal(image: string, workDir: string): Promise<boolean> {
  const sb = readSuperblock(image);
  if (!sb.needsRecovery) return false;
  if (sb.externalJournal) throw unreadable("the disk's journal is on another device");
  const run = await runTool("e2fsck", ["-E", "journal_only", "-p", image], workDir, {});
  // 0: nothing to fix; 1: fixed (the journal replayed). Anything else: e2fsck gave up.
  if (run.timedOut || (run.code !== 0 && run.code !== 1)) {
    throw unreadable(
      `the disk's journal could not be replayed: ${lastLines(run.stderr) || `e2fsck exited with ${run.code}`}`,
    );
  }
  return true;
}

interface ToolRun {
  code: number | null;
  stdout: Buffer;
  stderr: string;
  /** Output stopped at the bound (the tool was killed). */
  cut: boolean;
  timedOut: boolean;
}

/** Run an e2fsprogs tool in `workDir`, its output bounded: killed once it has given `limit` bytes. */
function runTool(
  tool: "debugfs" | "e2fsck",
  args: string[],
  workDir: string,
  options: { limit?: number },
): Promise<ToolRun> {
  const binary = findExecutable(tool);
  if (!binary) {
    return Promise.reject(
      new PyroError(ErrorCodes.HostRequirementMissing, `missing host tool: ${tool}`, {
        fix: { kind: "run_setup", packages: ["e2fsprogs"] },
      }),
    );
  }
  const limit = options.limit ?? OUTPUT_LIMIT;
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { cwd: workDir, env: TOOL_ENV, stdio: "pipe" });
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = "";
    let cut = false;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, TIMEOUT_MS);
    child.stdin.end();
    child.stdout.on("data", (chunk: Buffer) => {
      if (cut) return;
      const room = limit - outBytes;
      out.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
      outBytes += Math.min(chunk.length, room);
      if (outBytes >= limit) {
        cut = true;
        child.kill("SIGKILL");
      }
    });
    child.stderr.on("data", (chunk: Buffer) => {
      if (stderr.length < 65536) stderr += chunk.toString("latin1");
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(unreadable(`cannot run ${tool}: ${error.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr, cut, timedOut });
    });
  });
}

/** The text between the first `from` and the `to` after it (undefined if either is missing). */
function between(text: string, from: string, to: string): string | undefined {
  const start = text.indexOf(from);
  if (start === -1) return undefined;
  const end = text.indexOf(to, start + from.length);
  return end === -1 ? undefined : text.slice(start + from.length, end);
}

function lastLines(text: string): string {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !/^(debugfs|e2fsck) \d/.test(l));
  return lines.slice(-3).join("; ").slice(0, 500);
}

export function entryType(mode: number): Ext4EntryType {
  switch (mode & 0o170000) {
    case 0o100000:
      return "file";
    case 0o040000:
      return "directory";
    case 0o120000:
      return "symlink";
    default:
      return "other";
  }
}

/**
 * One line of `ls -l`: inode, mode, (dirent type), uid, gid, size, date,
 * name. Names are escaped by debugfs (\xNN for bytes < 32, >= 127 and "\"),
 * so a line is one entry and the escape decodes exactly.
 */
const LS_LINE =
  /^[ <] *(\d+)[ >] +([0-7]+) \(\d+\) +-?\d+ +-?\d+ +(\d+) (?:[ \d]\d-[A-Za-z]{3}-\d{4,} \d\d:\d\d| {17}) (.*)$/;

export function parseListing(text: string): Ext4Entry[] {
  const entries: Ext4Entry[] = [];
  for (const line of text.split("\n")) {
    const match = LS_LINE.exec(line);
    if (!match) continue;
    const inode = Number(match[1]);
    const name = Buffer.from(
      match[4]!.replace(/\\x([0-9a-f]{2})/g, (_, hex: string) =>
        String.fromCharCode(parseInt(hex, 16)),
      ),
      "latin1",
    );
    const shown = name.toString("latin1");
    if (inode === 0 || shown === "." || shown === "..") continue;
    const mode = parseInt(match[2]!, 8);
    entries.push({ name, inode, mode, size: Number(match[3]), type: entryType(mode) });
  }
  return entries;
}

/** A name for people: its UTF-8 text, or debugfs's \xNN escapes where it is not UTF-8. */
export function displayName(name: Buffer): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(name);
  } catch {
    let shown = "";
    for (const byte of name) {
      const plain = byte >= 32 && byte < 127 && byte !== 0x5c;
      shown += plain ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, "0")}`;
    }
    return shown;
  }
}

/** An ext4 image opened for reading; `workDir` is private and the tools' working directory. */
export class Ext4Image {
  constructor(
    readonly image: string,
    readonly workDir: string,
  ) {}

  /**
   * Run commands (each naming an inode, never a path) in one debugfs, and
   * split the output per command. The splits are marked by unknown commands
   * carrying a random nonce, which debugfs echoes: an image cannot forge them.
   */
  async #batch(commands: string[]): Promise<{ outputs: (string | undefined)[]; errors: string[] }> {
    const nonce = randomBytes(12).toString("hex");
    const marker = (i: number) => `pyro_${nonce}_${i}`;
    const script = commands.flatMap((c, i) => [marker(i), c]).concat(marker(commands.length));
    const file = path.join(this.workDir, `debugfs-${nonce}.cmd`);
    fs.writeFileSync(file, `${script.join("\n")}\n`, { mode: 0o600 });
    let run: ToolRun;
    try {
      run = await runTool("debugfs", ["-c", "-f", file, this.image], this.workDir, {});
    } finally {
      fs.rmSync(file, { force: true });
    }
    if (run.timedOut) throw unreadable("reading the disk took too long");
    const opened = /^.*while (trying to open|opening filesystem).*$/m.exec(run.stderr);
    if (opened) throw unreadable(`debugfs could not open the disk: ${opened[0].slice(0, 500)}`);
    const stdout = run.stdout.toString("latin1");
    const outputs: (string | undefined)[] = [];
    const errors: string[] = [];
    for (let i = 0; i < commands.length; i++) {
      // stdout: "debugfs: <marker>" then "debugfs: <command>" then its output.
      const region = between(stdout, `debugfs: ${marker(i)}\n`, `debugfs: ${marker(i + 1)}\n`);
      outputs.push(region === undefined ? undefined : region.slice(region.indexOf("\n") + 1));
      // stderr: "debugfs: Command not found <marker>", the command's complaints, the next marker's line.
      const complaints = between(run.stderr, `${marker(i)}\n`, `${marker(i + 1)}\n`) ?? "";
      errors.push(lastLines(complaints.slice(0, complaints.lastIndexOf("\n") + 1)));
    }
    return { outputs, errors };
  }

  /** List directories by inode, many per debugfs run. */
  async listDirs(inodes: number[]): Promise<Map<number, Ext4Listing>> {
    const listings = new Map<number, Ext4Listing>();
    for (let i = 0; i < inodes.length; i += BATCH) {
      const chunk = inodes.slice(i, i + BATCH);
      const { outputs, errors } = await this.#batch(chunk.map((ino) => `ls -l <${ino}>`));
      chunk.forEach((ino, j) => {
        const output = outputs[j];
        if (output === undefined) listings.set(ino, { entries: [], truncated: true });
        else {
          const entries = parseListing(output);
          const error = entries.length === 0 ? errors[j] : "";
          listings.set(ino, { entries, truncated: false, ...(error ? { error } : {}) });
        }
      });
    }
    return listings;
  }

  /**
   * The entry at `components` below the root, walked one directory at a
   * time without following symlinks: undefined if a component is missing;
   * an entry of type "symlink" (or "file") where the walk could not go on.
   * A component matches a name by its bytes or by its displayName.
   */
  async lookup(components: string[]): Promise<{ entry: Ext4Entry; rest: string[] } | undefined> {
    let entry: Ext4Entry = rootEntry();
    for (let i = 0; i < components.length; i++) {
      if (entry.type !== "directory") return { entry, rest: components.slice(i) };
      const listing = (await this.listDirs([entry.inode])).get(entry.inode)!;
      if (listing.error)
        throw unreadable(`a directory on the disk is unreadable: ${listing.error}`);
      const wanted = Buffer.from(components[i]!, "utf8");
      const found =
        listing.entries.find((e) => e.name.equals(wanted)) ??
        listing.entries.find((e) => displayName(e.name) === components[i]);
      if (!found) return undefined;
      entry = found;
    }
    return { entry, rest: [] };
  }

  /** Symlink targets by inode (fast links from `stat`, others from `cat`); bounded. */
  async readLinks(links: Ext4Entry[]): Promise<Map<number, Buffer>> {
    const targets = new Map<number, Buffer>();
    const wanted = links.filter((l) => l.type === "symlink" && l.size > 0 && l.size <= LINK_LIMIT);
    for (let i = 0; i < wanted.length; i += BATCH) {
      const chunk = wanted.slice(i, i + BATCH);
      // A target shorter than 60 bytes lives in the inode itself (a "fast" link).
      const { outputs } = await this.#batch(
        chunk.map((l) => (l.size < 60 ? `stat <${l.inode}>` : `cat <${l.inode}>`)),
      );
      chunk.forEach((link, j) => {
        const output = outputs[j];
        if (output === undefined) return;
        if (link.size >= 60) {
          targets.set(link.inode, Buffer.from(output.slice(0, link.size), "latin1"));
          return;
        }
        const at = output.indexOf('Fast link dest: "');
        if (at !== -1) {
          const from = at + 'Fast link dest: "'.length;
          targets.set(link.inode, Buffer.from(output.slice(from, from + link.size), "latin1"));
        }
      });
    }
    return targets;
  }

  /** The first `maxBytes` bytes of a regular file (debugfs is killed once it has given them). */
  async read(entry: Ext4Entry, maxBytes: number): Promise<Buffer> {
    if (entry.type !== "file") throw new Error(`inode ${entry.inode} is not a regular file`);
    const want = Math.min(maxBytes, entry.size);
    if (want === 0) return Buffer.alloc(0);
    const run = await runTool(
      "debugfs",
      ["-c", "-R", `cat <${entry.inode}>`, this.image],
      this.workDir,
      {
        limit: want,
      },
    );
    if (run.timedOut) throw unreadable("reading the file took too long");
    if (run.stdout.length < want) {
      throw unreadable(
        `the file could not be read (got ${run.stdout.length} of ${want} bytes)${run.stderr ? `: ${lastLines(run.stderr)}` : ""}`,
      );
    }
    return run.stdout;
  }
}

function rootEntry(): Ext4Entry {
  return { name: Buffer.alloc(0), inode: ROOT_INODE, mode: 0o040755, size: 0, type: "directory" };
}
