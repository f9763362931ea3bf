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

/**
 * Alive and not a zombie: it still holds its files, sockets and memory.
 * Every thread counts: a killed QEMU's main thread can be a zombie while
 * another thread still tears down its memory and only then closes its files
 * (its published ports among them).
 */
export function processRunning(pid: number): boolean {
  if (!processAlive(pid)) return false;
  let threads: string[];
  try {
    threads = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return false; // gone meanwhile
  }
  return threads.some((tid) => {
    const state = statField(`${pid}/task/${tid}`, 3);
    return state !== undefined && state !== "Z" && state !== "X";
  });
}

/**
 * Field `index` (1-based, as proc(5) numbers them: 3 state, 6 session,
 * 8 terminal foreground group, 22 start time) of /proc/PID/stat, or
 * undefined when the process is gone.
 */
export function statField(pid: number | string, index: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count after its last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[index - 3];
  } catch {
    return undefined;
  }
}

/** Every pid in /proc now. */
export function listPids(): string[] {
  return fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry));
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
  return listPids()
    .filter((pid) => commandLine(pid).includes(text))
    .map(Number);
}
