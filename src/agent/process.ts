/**
 * What the agent's handlers share about processes and arguments: the
 * environment every command starts from, argument checks, and killing a
 * process group.
 */
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import { GUEST_NETWORK, GUEST_PROXY_ENV } from "../network/addresses.js";
import { OpError } from "../protocol/errors.js";

export const BASE_ENV: Record<string, string> = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/root",
  LANG: "C.UTF-8",
  USER: "root",
  LOGNAME: "root",
  // A networked guest (it has a NIC) reaches the outside only through pyro's egress proxy.
  ...(fs.existsSync(`/sys/class/net/${GUEST_NETWORK.device}`) ? GUEST_PROXY_ENV : {}),
};

export function str(value: unknown, name: string): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new OpError("bad_args", `${name} must be a non-empty string`);
  }
  return value;
}

export function optNumber(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new OpError("bad_args", `${name} must be a non-negative number`);
  }
  return value;
}

/** Signal the process group `pid` leads (children are spawned detached, so each leads one). */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** SIGKILL a child's whole process group. */
export function killGroup(child: ChildProcess): void {
  if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
}

export function signalNumber(signal: NodeJS.Signals | null | undefined): number {
  if (!signal) return 0;
  return os.constants.signals[signal] ?? 0;
}
