/**
 * A cross-process lock file: created with O_EXCL, holding the owner's pid.
 * A lock whose owner is dead is taken over, so a killed process never wedges
 * the next one.
 */
import fs from "node:fs";
import { ErrorCodes, PyroError } from "../errors.js";
import { processAlive } from "./procs.js";

/** An empty or unparseable lock file younger than this may be a live owner mid-write. */
const UNREADABLE_LOCK_GRACE_MS = 10_000;

function tryAcquire(lockPath: string): boolean {
  // Create the lock with its content in one step (write a private file, then
  // link it into place) so no one ever sees a lock file without its pid.
  const tmp = `${lockPath}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(tmp, String(process.pid), { mode: 0o600, flag: "wx" });
  try {
    fs.linkSync(tmp, lockPath);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  let content: string;
  let mtimeMs: number;
  try {
    content = fs.readFileSync(lockPath, "utf8");
    mtimeMs = fs.statSync(lockPath).mtimeMs;
  } catch {
    return false; // vanished between open and read: try again
  }
  const pid = /^\d+$/.test(content.trim()) ? Number(content.trim()) : undefined;
  const stale =
    pid === undefined ? Date.now() - mtimeMs > UNREADABLE_LOCK_GRACE_MS : !processAlive(pid);
  if (stale) {
    // Remove it only if it is still the same file we judged.
    try {
      if (fs.readFileSync(lockPath, "utf8") === content) fs.unlinkSync(lockPath);
    } catch {
      // someone else cleaned it up
    }
  }
  return false;
}

export async function withLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: { timeoutMs?: number; onWait?: () => void; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30 * 60_000);
  let waited = false;
  while (!tryAcquire(lockPath)) {
    if (!waited) options.onWait?.();
    waited = true;
    if (Date.now() > deadline) {
      throw new PyroError(ErrorCodes.Busy, `timed out waiting for ${options.what ?? lockPath}`, {
        hint: `another pyro process holds ${lockPath}; wait for it or remove the file if no pyro is running`,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  try {
    return await fn();
  } finally {
    try {
      fs.unlinkSync(lockPath);
    } catch {
      // already gone
    }
  }
}
