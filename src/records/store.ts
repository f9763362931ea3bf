/**
 * Workspace state on disk, one directory per workspace:
 *
 *   workspaces/<id>/workspace.json   the record, written atomically
 *   workspaces/<id>/disk.qcow2       the persistent root disk (overlay over the environment)
 *   workspaces/<id>/baseline.tar     /workspace as it was right after create
 *   workspaces/<id>/journal.jsonl    the command journal (one JSON record a line)
 *   workspaces/<id>/control.sock     the supervisor's socket while it runs
 *   workspaces/<id>/lock             serialises read-modify-write of the record
 *
 * Everything is owner-only. A record is never half-written, and a record that
 * says "running" while its supervisor is dead is reported as failed.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import {
  ensurePrivateDir,
  readJsonFile,
  writeFileAtomic,
  type PyroPaths,
} from "../config/paths.js";
import { ErrorCodes, PyroError } from "../errors.js";
import { withLock } from "../util/lock.js";
import { processAlive } from "../util/procs.js";
import { hasNetwork, type NetworkPolicy } from "../network/policy.js";
import { serviceIsLive, type ServiceState } from "../protocol/messages.js";

/** Where a workspace's seed came from; "repo" is a repository cloned on the host (project source). */
export type OriginKind = "empty" | "directory" | "git" | "archive" | "repo";

export type WorkspaceState = "starting" | "started" | "stopped" | "failed";

export interface WorkspaceRecord {
  id: string;
  name: string | null;
  labels: Record<string, string>;
  environment: string;
  vcpu_count: number;
  mem_mib: number;
  state: WorkspaceState;
  /** Why the workspace is failed (or why its last start failed). */
  failure_reason: string | null;
  created_at: string;
  last_activity_at: string;
  expires_at: string | null;
  network_policy: NetworkPolicy;
  /** Host loopback ports the guest may reach at the host address (--allow-host-port). */
  allow_host_ports?: number[];
  seed: {
    origin_kind: OriginKind;
    origin_ref: string | null;
    files: number;
    bytes: number;
  };
  /** The process that owns the VM while it runs, and the VM itself. */
  supervisor_pid: number | null;
  qemu_pid: number | null;
  /** The process that is creating or starting the workspace (dead → the operation was interrupted). */
  busy_pid: number | null;
  boot_ms: number | null;
  accel: "kvm" | "tcg" | null;
  /** How the VM last came up: restored from a warm image, or booted cold (and why). */
  boot_kind?: "warm" | "cold";
  boot_note?: string | null;
  /** sha256 of the environment rootfs blob the disk is an overlay of (kept by prune). */
  rootfs_blob: string;
  /** False until create has seeded /workspace and captured the baseline. */
  baseline_ready: boolean;
  /** Last sequence number handed to an exec (since the last reset). */
  exec_sequence?: number;
  reset_count?: number;
  /** When the last reset happened (what summary and the journal cover starts there). */
  reset_at?: string | null;
  /** A memory snapshot to resume from at the next start (a fork's copy of its parent); used once. */
  restore_from?: string | null;
  /** With restore_from as device state alone: the changed pages (vm/memory-delta.ts)... */
  restore_delta?: string | null;
  /** ...and the RAM file they go over (the one the parent's RAM mapped). */
  restore_base?: string | null;
  /** The workspace this one was forked from. */
  forked_from?: string | null;
  /** Host ports forwarded into the guest now, each for a service (policy egress+published-ports). */
  published_ports?: PublishedPort[];
  /** The services as the host last saw them (the guest agent is the authority while it runs). */
  services?: ServiceRecord[];
  /** Names of the workspace's secrets (their values are in its owner-only secret store, never here). */
  secrets?: string[];
  /** Shells opened since the workspace was created, the latest last (bounded). */
  shells?: ShellRecord[];
}

/**
 * "running" and "exited" shells live in the guest; "closed" ones were closed
 * on request; "ended" ones went with the VM (stop, reset, a VM that died).
 */
export type ShellRecordState = "running" | "exited" | "closed" | "ended";

export interface ShellRecord {
  shell_id: string;
  state: ShellRecordState;
  cwd: string;
  cols: number;
  rows: number;
  opened_at: string;
  closed_at: string | null;
  exit_code: number | null;
  /** Why it is closed or ended: "closed on request", "the workspace was reset", … */
  end_reason: string | null;
}

/** Shell records kept per workspace (closed and ended ones beyond this are forgotten, oldest first). */
export const MAX_SHELL_RECORDS = 64;

export function shellIsLive(shell: { state: ShellRecordState }): boolean {
  return shell.state === "running" || shell.state === "exited";
}

export interface PublishedPort {
  host_address: "127.0.0.1";
  host_port: number;
  guest_port: number;
  service: string;
}

export interface ServiceRecord {
  name: string;
  state: ServiceState;
  exit_code: number | null;
  stop_reason: string | null;
  ended_at: string | null;
}

/**
 * The workspace's VM went away (stop, failure, reset, delete): its
 * forwarded ports went with QEMU, its services and shells with the guest.
 */
export function endRuntime(record: WorkspaceRecord, reason: string): void {
  record.published_ports = [];
  const now = new Date().toISOString();
  for (const shell of record.shells ?? []) {
    if (!shellIsLive(shell)) continue;
    shell.state = "ended";
    shell.end_reason = reason;
    shell.closed_at = now;
  }
  for (const service of record.services ?? []) {
    if (!serviceIsLive(service)) continue;
    service.state = "stopped";
    service.stop_reason = reason;
    service.ended_at = now;
  }
}

/** The network a workspace's VM boots with (see LaunchRequest.network); undefined for "off". */
export function vmNetwork(record: WorkspaceRecord): { allowHostPorts: number[] } | undefined {
  return hasNetwork(record.network_policy)
    ? { allowHostPorts: record.allow_host_ports ?? [] }
    : undefined;
}

/**
 * Whether a standby of this shape can become the workspace's VM: same
 * network variant, and no allowed host ports (those are fixed when QEMU
 * starts, and a standby started without them).
 */
export function standbyServes(slot: { network: boolean }, record: WorkspaceRecord): boolean {
  return hasNetwork(record.network_policy) === slot.network && !record.allow_host_ports?.length;
}

const ID_PATTERN = /^(ws|vm)_[0-9a-f]{12}$/;
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const LABEL_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;

/** What a record is: a workspace (ws_…), or a bare VM made by MCP vm_create (vm_…). */
export type RecordKind = "workspace" | "vm";

export function newWorkspaceId(kind: RecordKind = "workspace"): string {
  return `${kind === "vm" ? "vm" : "ws"}_${randomBytes(6).toString("hex")}`;
}

/** A record's kind, from its id: one-shot VMs keep their own id space. */
export function kindOf(id: string): RecordKind {
  return id.startsWith("vm_") ? "vm" : "workspace";
}

export function validateName(name: string): string {
  if (!NAME_PATTERN.test(name) || ID_PATTERN.test(name)) {
    throw new PyroError(ErrorCodes.UsageError, `invalid workspace name "${name}"`, {
      hint: "names are 1-63 letters, digits, '.', '_' or '-', start with a letter or digit, and do not look like an id (ws_… or vm_…)",
    });
  }
  return name;
}

export function validateLabel(key: string, value: string): void {
  if (!LABEL_KEY_PATTERN.test(key)) {
    throw new PyroError(ErrorCodes.UsageError, `invalid label key "${key}"`, {
      hint: "label keys are 1-63 letters, digits, '.', '_', '/' or '-'",
    });
  }
  if (value.length > 256) {
    throw new PyroError(ErrorCodes.UsageError, `label ${key} is longer than 256 characters`);
  }
}

export class WorkspaceStore {
  readonly root: string;

  constructor(paths: PyroPaths) {
    this.root = path.join(paths.data, "workspaces");
  }

  dir(id: string): string {
    return path.join(this.root, id);
  }

  file(id: string, name: string): string {
    return path.join(this.dir(id), name);
  }

  create(record: WorkspaceRecord): void {
    ensurePrivateDir(this.root);
    fs.mkdirSync(this.dir(record.id), { mode: 0o700 });
    this.write(record);
  }

  write(record: WorkspaceRecord, options: { durable?: boolean } = {}): void {
    writeFileAtomic(
      this.file(record.id, "workspace.json"),
      `${JSON.stringify(record, null, 2)}\n`,
      0o600,
      options,
    );
  }

  /** The record as stored, or undefined (missing or unreadable). */
  readRaw(id: string): WorkspaceRecord | undefined {
    return readJsonFile<WorkspaceRecord>(this.file(id, "workspace.json"));
  }

  /** The record with its live state: a running state whose owner process is gone becomes failed. */
  read(id: string): WorkspaceRecord | undefined {
    const record = this.readRaw(id);
    return record ? liveView(record) : undefined;
  }

  ids(): string[] {
    if (!fs.existsSync(this.root)) return [];
    return fs.readdirSync(this.root).filter((name) => ID_PATTERN.test(name));
  }

  all(): WorkspaceRecord[] {
    return this.ids()
      .map((id) => this.read(id))
      .filter((r): r is WorkspaceRecord => r !== undefined);
  }

  /** Find a workspace by id or name; unknown gives an error listing the known ones. */
  resolve(idOrName: string): WorkspaceRecord {
    const byId = ID_PATTERN.test(idOrName) ? this.read(idOrName) : undefined;
    const found = byId ?? this.all().find((r) => r.name === idOrName);
    if (!found) {
      const known = this.all().map((r) => (r.name ? `${r.id} (${r.name})` : r.id));
      throw new PyroError(ErrorCodes.WorkspaceNotFound, `no workspace "${idOrName}"`, {
        fix: { kind: "find_workspace", known },
      });
    }
    return found;
  }

  /**
   * Run `fn` holding the workspace's lock: record updates wait, and so does
   * a start (which turns the state to "starting" under it).
   */
  async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return withLock(this.file(id, "lock"), fn, { timeoutMs: 60_000, what: `the lock of ${id}` });
  }

  /** Read-modify-write under the workspace's lock. */
  /** `durable: false` for bookkeeping on the hot path (see writeFileAtomic). */
  async update(
    id: string,
    change: (record: WorkspaceRecord) => WorkspaceRecord | void,
    options: { durable?: boolean } = {},
  ): Promise<WorkspaceRecord> {
    return withLock(
      this.file(id, "lock"),
      async () => {
        const current = this.readRaw(id);
        if (!current)
          throw new PyroError(ErrorCodes.WorkspaceNotFound, `workspace ${id} was deleted`);
        const draft = structuredClone(current);
        const next = change(draft) ?? draft;
        this.write(next, options);
        return liveView(next);
      },
      { timeoutMs: 60_000, what: `the lock of ${id}` },
    );
  }

  remove(id: string): void {
    fs.rmSync(this.dir(id), { recursive: true, force: true });
  }
}

/** What a record means right now, given which of its processes are alive. */
export function liveView(record: WorkspaceRecord): WorkspaceRecord {
  if (
    record.state === "started" &&
    !record.baseline_ready &&
    !processAlive(record.busy_pid ?? -1)
  ) {
    return {
      ...record,
      state: "failed",
      failure_reason:
        record.failure_reason ?? "the create was interrupted before /workspace was seeded",
    };
  }
  if (record.state === "started" && !processAlive(record.supervisor_pid ?? -1)) {
    const failed: WorkspaceRecord = {
      ...record,
      services: (record.services ?? []).map((s) => ({ ...s })),
      state: "failed",
      failure_reason:
        record.failure_reason ??
        "the workspace's VM is no longer running (its supervisor process died)",
    };
    endRuntime(failed, "the VM died");
    return failed;
  }
  if (
    record.state === "starting" &&
    !processAlive(record.busy_pid ?? -1) &&
    !processAlive(record.supervisor_pid ?? -1)
  ) {
    return {
      ...record,
      state: "failed",
      failure_reason: record.failure_reason ?? "the create or start was interrupted",
    };
  }
  return record;
}
