/**
 * A cross-process lock file: created with O_EXCL, holding the owner's pid.
 * A lock whose owner is dead is taken over, so a killed process never wedges
 * the next one.
 */
import fs from "node:fs";
import { ErrorCodes, PyroError } from "../errors.js";

export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function tryAcquire(lockPath: string): boolean {
  try {
    const fd = fs.openSync(lockPath, "wx", 0o600);
    fs.writeSync(fd, String(process.pid));
    fs.closeSync(fd);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  let owner = NaN;
  try {
    owner = Number(fs.readFileSync(lockPath, "utf8").trim());
  } catch {
    return false; // vanished between open and read: try again
  }
  if (!processAlive(owner)) {
    // Stale: remove it only if it is still the same file we judged.
    try {
      if (Number(fs.readFileSync(lockPath, "utf8").trim()) === owner) fs.unlinkSync(lockPath);
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
