/**
 * Every VM has a directory under `vms/` holding its overlay, sockets, console
 * log and a `vm.json` record naming its QEMU pid and the pid of its owner.
 * No QEMU outlives its owner by accident: ephemeral VMs die with their owner
 * (parent-death signal), and `reapOrphans` finds and kills whatever slipped
 * through (an owner killed between spawn and setup, a crashed supervisor).
 */
import fs from "node:fs";
import path from "node:path";
import { readJsonFile, writeFileAtomic } from "../config/paths.js";
import { commandLine, processAlive } from "../util/procs.js";

export interface VmRecord {
  id: string;
  dir: string;
  owner_pid: number;
  qemu_pid: number | null;
  created_at: string;
  /** The workspace this VM belongs to, if any. */
  workspace_id?: string;
  /** A standby VM waiting for a workspace (supervisor/standby-pool.ts): counted by no limit. */
  standby?: boolean;
}

export function recordPath(dir: string): string {
  return path.join(dir, "vm.json");
}

export function writeRecord(record: VmRecord): void {
  writeFileAtomic(recordPath(record.dir), JSON.stringify(record));
}

export function readRecord(dir: string): VmRecord | undefined {
  return readJsonFile<VmRecord>(recordPath(dir));
}

/** True if `pid` is a QEMU started for the VM in `dir` (guards against pid reuse). */
export function isQemuOf(pid: number, dir: string): boolean {
  const cmdline = commandLine(pid);
  return cmdline.includes("qemu-system") && cmdline.includes(dir);
}

export function killQemu(pid: number | null, dir: string): void {
  if (pid === null || !isQemuOf(pid, dir)) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // gone already
  }
}

/** Kill and remove every VM whose owner is gone. Returns the ids reaped. */
export function reapOrphans(vmsDir: string): string[] {
  const reaped: string[] = [];
  if (!fs.existsSync(vmsDir)) return reaped;
  for (const name of fs.readdirSync(vmsDir)) {
    const dir = path.join(vmsDir, name);
    const record = readRecord(dir);
    if (record && processAlive(record.owner_pid)) continue;
    if (!record) {
      // A directory without a record is a VM whose creation was interrupted; give a live creator a moment.
      const age = Date.now() - safeMtime(dir);
      if (age < 60_000) continue;
    }
    if (record) killQemu(record.qemu_pid, dir);
    fs.rmSync(dir, { recursive: true, force: true });
    reaped.push(name);
  }
  return reaped;
}

/** VMs whose owners are alive: what counts against the running limit. */
export function liveRecords(vmsDir: string): VmRecord[] {
  if (!fs.existsSync(vmsDir)) return [];
  return fs
    .readdirSync(vmsDir)
    .map((name) => readRecord(path.join(vmsDir, name)))
    .filter((r): r is VmRecord => r !== undefined && processAlive(r.owner_pid));
}

function safeMtime(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}
