import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ensurePrivateDir, readJsonFile, writeFileAtomic } from "../config/paths.js";

/** sha256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
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
  memo[file] = { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, sha256: hex };
  ensurePrivateDir(path.dirname(memoFile));
  writeFileAtomic(memoFile, JSON.stringify(memo));
  return hex;
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
