import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ensurePrivateDir, readJsonFile, writeFileAtomic } from "../config/paths.js";

/** sha256 of a file, read in large chunks (RAM snapshots are a GiB or more). */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  const handle = await fs.promises.open(file, "r");
  try {
    const buffer = Buffer.allocUnsafe(8 * 1024 * 1024);
    while (true) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest("hex");
}

export function sha256(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

interface Memo {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

/**
 * sha256 of a file, remembered in `memoFile` by the file's stat (size, mtime,
 * inode): an unchanged file is hashed once, a changed one again.
 */
export async function sha256FileMemo(file: string, memoFile: string): Promise<string> {
  const stat = fs.statSync(file);
  const memo = readJsonFile<Record<string, Memo>>(memoFile) ?? {};
  const hit = memo[file];
  if (hit && hit.size === stat.size && hit.mtimeMs === stat.mtimeMs && hit.ino === stat.ino) {
    return hit.sha256;
  }
  const hex = await sha256File(file);
  rememberSha256(file, hex, memoFile);
  return hex;
}

/** Record a sha256 just computed for `file` (as it is now) in `memoFile`. */
export function rememberSha256(file: string, sha256: string, memoFile: string): void {
  const stat = fs.statSync(file);
  const memo = readJsonFile<Record<string, Memo>>(memoFile) ?? {};
  memo[file] = { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, sha256 };
  ensurePrivateDir(path.dirname(memoFile));
  writeFileAtomic(memoFile, JSON.stringify(memo));
}

/** Is `file` there with this size and sha256? (Hashing memoized as in sha256FileMemo.) */
export async function fileMatches(
  file: string,
  expected: { sha256: string; size: number },
  memoFile: string,
): Promise<boolean> {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    return false;
  }
  return size === expected.size && (await sha256FileMemo(file, memoFile)) === expected.sha256;
}
