/**
 * Standby VMs: one VM per prepared environment and size, restored from the
 * warm image ahead of time, warmed up (so an emulated guest has already
 * translated the code a first command runs) and waiting. The next create or
 * reset of that environment and size takes it over instead of restoring:
 * ~0.1 s instead of ~0.5 s under emulation. It is refilled in the background
 * after each use and goes away after PYRO_STANDBY_IDLE_SECONDS (default
 * 900) without one. PYRO_STANDBY=0 turns the whole thing off.
 *
 * A standby is a supervisor process in standby mode (supervisor.ts
 * runStandby) that owns its QEMU like any workspace supervisor; this module
 * is the host side: where standbys live, starting one, taking one over,
 * listing and stopping them. Every claim checks that the standby was
 * restored from the warm image a restore would use now (same warm key).
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ensurePrivateDir, readJsonFile, type PyroPaths } from "../config/paths.js";
import type { EnvironmentCache } from "../environments/cache.js";
import { AgentClient } from "../protocol/client.js";
import { trace } from "../util/trace.js";
import { commandLine, processAlive } from "../util/procs.js";
import { findQemu } from "../vm/qemu.js";
import { locateSupervisor } from "./spawn.js";
import { shapeName, WarmImages, type WarmKey, type WarmShape } from "../boot/warm-image.js";

/** One standby per warm image shape: environment, size, and the networked variant or not. */
export type StandbySlot = WarmShape;

/** standby.json: what a standby supervisor says about itself. */
export interface StandbyRecord {
  environment: string;
  vcpu_count: number;
  mem_mib: number;
  /** Restored from the networked variant (serves creates with a network policy). */
  network?: boolean;
  supervisor_pid: number;
  qemu_pid: number | null;
  state: "starting" | "ready";
  /** The warm key of the warm image it was restored from. */
  key: WarmKey | null;
  started_at: string;
  ready_at: string | null;
  idle_seconds: number;
}

export interface StandbyInfo extends StandbyRecord {
  slot: string;
}

const DEFAULT_IDLE_SECONDS = 900;
const CLAIM_TIMEOUT_MS = 30_000;

export function standbyEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.PYRO_STANDBY !== "0" && standbyIdleSeconds(env) > 0;
}

export function standbyIdleSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.PYRO_STANDBY_IDLE_SECONDS;
  if (raw === undefined || raw === "") return DEFAULT_IDLE_SECONDS;
  const seconds = Number(raw);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : DEFAULT_IDLE_SECONDS;
}

export function standbyRoot(paths: PyroPaths): string {
  return path.join(paths.data, "standby");
}

export function slotDir(paths: PyroPaths, slot: StandbySlot): string {
  return path.join(standbyRoot(paths), shapeName(slot));
}

export const standbyFiles = (dir: string) => ({
  record: path.join(dir, "standby.json"),
  socket: path.join(dir, "standby.sock"),
  log: path.join(dir, "supervisor.log"),
  lock: path.join(dir, "lock"),
  /** Disks of standby VMs, one per supervisor pid; a workspace that takes one hard-links it. */
  disks: path.join(dir, "disks"),
});

/** The standby of a slot if its supervisor is alive. */
export function liveStandby(paths: PyroPaths, slot: StandbySlot): StandbyRecord | undefined {
  const record = readJsonFile<StandbyRecord>(standbyFiles(slotDir(paths, slot)).record);
  return record && isStandbySupervisor(record.supervisor_pid) ? record : undefined;
}

/** Alive and a standby supervisor (not a reused pid). */
function isStandbySupervisor(pid: number): boolean {
  return processAlive(pid) && commandLine(pid).includes("--standby");
}

/** Start a standby for `slot` in the background unless one is alive or starting. Never throws. */
export function spawnStandby(paths: PyroPaths, slot: StandbySlot): void {
  if (!standbyEnabled()) return;
  try {
    if (liveStandby(paths, slot)) return;
    const dir = ensurePrivateDir(slotDir(paths, slot));
    const log = fs.openSync(standbyFiles(dir).log, "a", 0o600);
    const child = spawn(
      process.execPath,
      [locateSupervisor(), JSON.stringify(paths), "--standby", JSON.stringify(slot)],
      { detached: true, stdio: ["ignore", "ignore", log] },
    );
    fs.closeSync(log);
    child.on("error", () => {});
    child.unref();
    trace("standby: spawned");
  } catch {
    // A standby is an optimisation: failing to start one changes nothing else.
  }
}

/**
 * Hand workspace `workspaceId` (record in state "starting", no disk yet) to
 * the slot's standby. True when the standby now serves it as its supervisor;
 * false when there is none, it is not ready, or it was restored from a
 * snapshot other than the one a restore would use now (it is stopped then).
 */
export async function claimStandby(
  paths: PyroPaths,
  cache: EnvironmentCache,
  slot: StandbySlot,
  workspaceId: string,
): Promise<boolean> {
  if (!standbyEnabled()) return false;
  const standby = liveStandby(paths, slot);
  if (!standby || standby.state !== "ready" || !standby.key) return false;
  if (!(await keyIsCurrent(paths, cache, slot, standby.key))) {
    stopStandby(standby);
    return false;
  }
  const answer = await claim(standbyFiles(slotDir(paths, slot)).socket, workspaceId);
  trace(`standby: claim ${answer.ok ? "taken" : `refused (${answer.error ?? "no answer"})`}`);
  return answer.ok;
}

async function keyIsCurrent(
  paths: PyroPaths,
  cache: EnvironmentCache,
  slot: StandbySlot,
  key: WarmKey,
): Promise<boolean> {
  try {
    const qemu = findQemu(paths.hostCache);
    if (!qemu) return false;
    const current = await new WarmImages(paths, cache).currentKeyFor(slot, qemu);
    return JSON.stringify(current.key) === JSON.stringify(key);
  } catch {
    return false;
  }
}

/** Ask the standby to take `workspaceId` over; false (with why) when it does not. */
async function claim(
  socketPath: string,
  workspaceId: string,
): Promise<{ ok: boolean; error?: string }> {
  let agent: AgentClient | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    agent = await AgentClient.connectUnix(socketPath);
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error("timed out")), CLAIM_TIMEOUT_MS);
    });
    await Promise.race([agent.request("pyro.claim", { workspace_id: workspaceId }), timedOut]);
    return { ok: true };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
    agent?.close();
  }
}

/** Every standby whose supervisor is alive. */
export function listStandbys(paths: PyroPaths): StandbyInfo[] {
  const root = standbyRoot(paths);
  if (!fs.existsSync(root)) return [];
  return fs.readdirSync(root).flatMap((slot) => {
    const record = readJsonFile<StandbyRecord>(standbyFiles(path.join(root, slot)).record);
    return record && isStandbySupervisor(record.supervisor_pid) ? [{ ...record, slot }] : [];
  });
}

function stopStandby(record: StandbyRecord): void {
  try {
    process.kill(record.supervisor_pid, "SIGTERM");
  } catch {
    // gone already
  }
}

/** Stop the slot's standby, if any (a re-prepare replaces the warm image it came from). */
export function stopSlotStandby(paths: PyroPaths, slot: StandbySlot): void {
  const standby = liveStandby(paths, slot);
  if (standby) stopStandby(standby);
}

/** Stop every standby (prune): their VMs die with their supervisors. */
export function stopStandbys(paths: PyroPaths): number {
  const standbys = listStandbys(paths);
  for (const standby of standbys) stopStandby(standby);
  return standbys.length;
}
