/**
 * Copying a running VM's memory for a fork, the cheapest way its RAM allows.
 * A VM restored from a warm image (or forked from one) maps that image's
 * RAM file copy-on-write: the fork gets its device state and a memory delta
 * of the pages it changed (memory-delta.ts), tens of MiB, and maps the same
 * file. Any other VM (a cold boot: plain RAM), or one whose delta cannot be
 * read, is saved as a full migration stream, as before.
 */
import fs from "node:fs";
import { trace } from "../util/trace.js";
import type { MicroVm } from "./machine.js";
import { changedRuns, findRamMapping, saveDelta } from "./memory-delta.js";

export interface ForkMemory {
  /** What the fork's QEMU loads: device state alone (with a delta) or a full stream. */
  state: string;
  /** The changed pages, and the RAM file they go over; absent for a full stream. */
  delta?: { file: string; base: string; pages: number };
}

/**
 * Pause `vm` and save what a fork restores to `files.state` (and
 * `files.delta` when it can). The VM stays paused: the caller copies the
 * disk, then resumes it.
 */
export async function saveForFork(
  vm: MicroVm,
  files: { state: string; delta?: string },
): Promise<ForkMemory> {
  const memory = vm.memory;
  const pid = vm.qemuPid;
  if (files.delta && memory.kind === "file" && !memory.shared && pid !== undefined) {
    try {
      const mapping = findRamMapping(pid, memory.path);
      await vm.saveDeviceState(files.state);
      // Paused now: the set of changed pages holds still.
      const runs = changedRuns(`/proc/${pid}/pagemap`, mapping);
      saveDelta(`/proc/${pid}/mem`, mapping, runs, files.delta);
      const pages = runs.reduce((sum, [, count]) => sum + count, 0);
      return { state: files.state, delta: { file: files.delta, base: memory.path, pages } };
    } catch (error) {
      // e.g. ptrace access refused (Yama scope 3), or the RAM file was replaced.
      trace(`fork: no memory delta (${error instanceof Error ? error.message : String(error)})`);
      fs.rmSync(files.delta, { force: true });
    }
  }
  await vm.saveState(files.state);
  return { state: files.state };
}

/** How forks of this host's warm-restored workspaces copy memory, and why (for doctor). */
export function forkCopyMode(): { copy: "delta" | "full"; reason: string } {
  const scope = readYamaScope();
  const root = process.getuid?.() === 0;
  if (scope === 3 || (scope === 2 && !root)) {
    return {
      copy: "full",
      reason: `kernel.yama.ptrace_scope is ${scope}: pyro cannot read a VM's memory pages, so a fork copies all of it through QEMU's migration stream (seconds under emulation)`,
    };
  }
  return {
    copy: "delta",
    reason:
      "a fork copies only the pages its parent changed since its warm restore (tens of MiB, the parent pauses ~0.1 s); a workspace that booted cold is copied whole through QEMU's migration stream",
  };
}

function readYamaScope(): number | null {
  try {
    return Number(fs.readFileSync("/proc/sys/kernel/yama/ptrace_scope", "utf8").trim());
  } catch {
    return null; // no Yama: ptrace is governed by uid alone
  }
}
