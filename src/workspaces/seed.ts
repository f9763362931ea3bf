/**
 * Turning a seed (a directory, a git checkout, or a .tar/.tar.gz/.tgz) into
 * one clean tar file for /workspace. Inside a git checkout only tracked and
 * untracked-but-not-ignored files are taken, never `.git` internals. An
 * archive is first extracted safely on the host, so what reaches the guest
 * has no absolute paths, `..`, devices or escaping symlinks.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ErrorCodes, PyroError } from "../errors.js";
import type { OriginKind } from "../records/store.js";
import { packFiles, safeExtract, type SkippedEntry } from "./archives.js";

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

export async function prepareSeed(seedPath: string): Promise<PreparedSeed> {
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
      const gitFiles = gitSeedFiles(source);
      const files = gitFiles ?? ["."];
      if (files.length > 0) await packFiles(source, files, tarFile);
      return {
        origin_kind: gitFiles ? "git" : "directory",
        origin_ref: gitFiles ? gitRef(source) : source,
        tarFile: files.length > 0 ? tarFile : undefined,
        files: gitFiles ? gitFiles.length : countFiles(source),
        bytes: files.length > 0 ? fs.statSync(tarFile).size : 0,
        skipped: [],
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

/** Tracked plus untracked-not-ignored files of the checkout containing `dir`, relative to `dir`; undefined outside git. */
export function gitSeedFiles(dir: string): string[] | undefined {
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
    ["-C", dir, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
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

function countFiles(dir: string): number {
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
