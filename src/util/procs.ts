import fs from "node:fs";

export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Alive and not a zombie: it still holds its files, sockets and memory. */
export function processRunning(pid: number): boolean {
  if (!processAlive(pid)) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

/**
 * The command line of `pid` as /proc has it (arguments NUL-separated; a
 * process that set its title shows that instead), or "" if it is gone.
 */
export function commandLine(pid: number | string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return ""; // exited meanwhile, or not ours to read
  }
}

/** Pids of processes whose command line mentions `text` (e.g. a build directory). */
export function processesMentioning(text: string): number[] {
  return fs
    .readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry) && commandLine(entry).includes(text))
    .map(Number);
}
