/**
 * Turning a seed (a directory, a git checkout, or a .tar/.tar.gz/.tgz) into
 * one clean tar file for /workspace. Inside a git checkout the seed mode
 * picks the files: tracked ones, tracked plus untracked-not-ignored (the
 * default), or all; `.git` only when asked. What cannot be seeded (sockets,
 * devices, unreadable or oversized files) is skipped and reported, never a
 * failure. An archive is first extracted safely on the host, so what
 * reaches the guest has no absolute paths, `..`, devices or escaping symlinks.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ErrorCodes, PyroError } from "../errors.js";
import type { OriginKind } from "../records/store.js";
import { SEED_LIMITS } from "../limits.js";
import { countFiles, packFiles, safeExtract, type SkippedEntry } from "./archives.js";

export type { OriginKind };

export interface PreparedSeed {
  origin_kind: OriginKind;
  origin_ref: string | null;
  /** Tar file to unpack into /workspace; undefined for an empty seed. */
  tarFile: string | undefined;
  files: number;
  bytes: number;
  skipped: SkippedEntry[];
  cleanup(): void;
}

const ARCHIVE_SUFFIXES = [".tar", ".tar.gz", ".tgz"];

/** Which files of a git checkout seed a workspace (a plain directory is always seeded whole). */
export const SEED_MODES = ["tracked", "worktree", "all"] as const;
export type SeedMode = (typeof SEED_MODES)[number];

export interface SeedOptions {
  /** tracked: git's index; worktree (default): plus untracked-not-ignored files; all: every file. */
  mode?: SeedMode;
  /** Seed the checkout's `.git` too (history, branches), e.g. to commit or bisect in the guest. */
  includeGit?: boolean;
}

export function emptySeed(): PreparedSeed {
  return {
    origin_kind: "empty",
    origin_ref: null,
    tarFile: undefined,
    files: 0,
    bytes: 0,
    skipped: [],
    cleanup: () => {},
  };
}

export async function prepareSeed(
  seedPath: string,
  options: SeedOptions = {},
): Promise<PreparedSeed> {
  const mode = options.mode ?? "worktree";
  if (!(SEED_MODES as readonly string[]).includes(mode)) {
    throw new PyroError(ErrorCodes.UsageError, `unknown seed mode ${mode}`, {
      hint: `seed modes: ${SEED_MODES.join(", ")}`,
    });
  }
  const source = path.resolve(seedPath);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(source);
  } catch {
    throw new PyroError(ErrorCodes.UsageError, `seed path ${seedPath} does not exist`, {
      hint: "give a directory or a .tar, .tar.gz or .tgz archive",
    });
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-seed-"));
  const cleanup = () => fs.rmSync(work, { recursive: true, force: true });
  try {
    const tarFile = path.join(work, "seed.tar");
    if (stat.isDirectory()) {
      const gitFiles = mode === "all" ? undefined : gitSeedFiles(source, mode);
      const isGit =
        gitFiles !== undefined || (mode === "all" && fs.existsSync(path.join(source, ".git")));
      let listed = gitFiles ?? walkTree(source, (rel) => rel === ".git" && !options.includeGit);
      if (gitFiles && options.includeGit && fs.existsSync(path.join(source, ".git")))
        listed = [...listed, ...walkTree(source, () => false, ".git")];
      const { entries, skipped } = seedable(source, listed);
      if (entries.length > 0) await packFiles(source, entries, tarFile, { recurse: false });
      return {
        origin_kind: isGit ? "git" : "directory",
        origin_ref: isGit ? gitRef(source) : source,
        tarFile: entries.length > 0 ? tarFile : undefined,
        files: entries.filter((e) => !e.endsWith("/")).length,
        bytes: entries.length > 0 ? fs.statSync(tarFile).size : 0,
        skipped,
        cleanup,
      };
    }
    if (stat.isFile() && ARCHIVE_SUFFIXES.some((suffix) => source.endsWith(suffix))) {
      const tree = path.join(work, "tree");
      fs.mkdirSync(tree);
      let skipped: SkippedEntry[];
      try {
        skipped = await safeExtract(source, tree);
      } catch (error) {
        throw new PyroError(
          ErrorCodes.UsageError,
          `cannot read seed archive ${seedPath}: ${(error as Error).message}`,
        );
      }
      await packFiles(tree, ["."], tarFile);
      return {
        origin_kind: "archive",
        origin_ref: source,
        tarFile,
        files: countFiles(tree),
        bytes: fs.statSync(tarFile).size,
        skipped,
        cleanup,
      };
    }
    throw new PyroError(
      ErrorCodes.UsageError,
      `seed path ${seedPath} is neither a directory nor a .tar/.tar.gz/.tgz archive`,
    );
  } catch (error) {
    cleanup();
    throw error;
  }
}

/**
 * The files of the checkout containing `dir` (relative to `dir`) that a seed
 * mode takes: git's index, plus untracked-not-ignored files for "worktree".
 * Undefined outside git.
 */
export function gitSeedFiles(
  dir: string,
  mode: Exclude<SeedMode, "all"> = "worktree",
): string[] | undefined {
  try {
    const inside = execFileSync("git", ["-C", dir, "rev-parse", "--is-inside-work-tree"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
    if (inside !== "true") return undefined;
  } catch (error) {
    // A checkout git refuses to read must not fall back to a plain copy: that would seed .git and ignored secrets.
    const stderr = String((error as { stderr?: unknown }).stderr ?? "");
    if (/dubious ownership|safe\.directory/.test(stderr)) {
      throw new PyroError(
        ErrorCodes.UsageError,
        `git refuses to read ${dir}: it is owned by another user`,
        {
          hint: `run \`git config --global --add safe.directory ${dir}\`, or seed a copy you own`,
        },
      );
    }
    return undefined;
  }
  const listed = execFileSync(
    "git",
    [
      "-C",
      dir,
      "ls-files",
      "-z",
      "--cached",
      ...(mode === "worktree" ? ["--others", "--exclude-standard"] : []),
    ],
    {
      encoding: "utf8",
      maxBuffer: 256 * 1024 * 1024,
    },
  );
  const files = [...new Set(listed.split("\0").filter(Boolean))];
  // Skip index entries missing on disk and submodule directories (gitlinks).
  return files.filter((file) => {
    try {
      return !fs.lstatSync(path.join(dir, file)).isDirectory();
    } catch {
      return false;
    }
  });
}

function gitRef(dir: string): string {
  try {
    const head = execFileSync("git", ["-C", dir, "rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    return `${dir}@${head}`;
  } catch {
    return dir;
  }
}

/**
 * Every entry under `root` (or under `root/start`), relative to `root`:
 * directories end with "/" (so empty ones are kept); `leaveOut` drops a
 * subtree. Symlinks are entries, never followed.
 */
function walkTree(root: string, leaveOut: (rel: string) => boolean, start = ""): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(root, rel), { withFileTypes: true });
    } catch {
      out.push(`${rel}/`); // unreadable: seedable() reports it
      return;
    }
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (leaveOut(child)) continue;
      if (entry.isDirectory()) {
        out.push(`${child}/`);
        walk(child);
      } else out.push(child);
    }
  };
  if (start) out.push(`${start}/`);
  walk(start);
  return out;
}

/**
 * The entries that can go into the seed, and why the others cannot: only
 * regular files, directories and symlinks, readable, each file at most
 * LIMITS.seedFileBytes.
 */
function seedable(root: string, listed: string[]): { entries: string[]; skipped: SkippedEntry[] } {
  const entries: string[] = [];
  const skipped: SkippedEntry[] = [];
  const skip = (rel: string, reason: string) =>
    skipped.push({ path: rel.replace(/\/$/, ""), reason });
  for (const rel of listed) {
    const full = path.join(root, rel);
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(full);
    } catch {
      skip(rel, "vanished while seeding");
      continue;
    }
    if (stat.isSymbolicLink()) entries.push(rel);
    else if (stat.isDirectory()) {
      if (readable(full, fs.constants.R_OK | fs.constants.X_OK)) entries.push(rel);
      else skip(rel, "unreadable directory");
    } else if (!stat.isFile()) skip(rel, "not a regular file (socket, FIFO or device)");
    else if (stat.size > SEED_LIMITS.fileBytes)
      skip(rel, `larger than ${SEED_LIMITS.fileBytes / 1024 / 1024} MiB`);
    else if (!readable(full, fs.constants.R_OK)) skip(rel, "unreadable file");
    else entries.push(rel);
  }
  return { entries, skipped };
}

function readable(file: string, mode: number): boolean {
  try {
    fs.accessSync(file, mode);
    return true;
  } catch {
    return false;
  }
}
