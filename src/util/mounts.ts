import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, PyroError } from "../errors.js";

/** Mount points at or below `dir`, deepest first (from /proc/self/mountinfo). */
export function mountsUnder(dir: string): string[] {
  const root = path.resolve(dir);
  let info = "";
  try {
    info = fs.readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  return info
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((mount): mount is string => mount !== undefined)
    .map((mount) => mount.replace(/\\040/g, " "))
    .filter((mount) => mount === root || mount.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
}

/** Lazily unmount everything below `dir`, so removing it cannot reach into /proc, /sys or /dev. */
export function unmountUnder(dir: string): void {
  for (const mount of mountsUnder(dir)) {
    try {
      execFileSync("umount", ["-l", mount], { stdio: "ignore", timeout: 10_000 });
    } catch {
      // not ours to unmount, or already gone
    }
  }
  if (mountsUnder(dir).length > 0) {
    throw new PyroError(
      ErrorCodes.Busy,
      `cannot unmount filesystems under ${dir}; remove them by hand before deleting it`,
    );
  }
}

/** rm -rf that first detaches any mounts inside the tree. */
export async function removeTree(dir: string): Promise<void> {
  unmountUnder(dir);
  await fs.promises.rm(dir, { recursive: true, force: true });
}
