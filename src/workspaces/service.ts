/**
 * Persistent workspaces (contract §4): lifecycle, exec with a journal, files,
 * patches, diff against the baseline, export and sync. Runs in the caller's
 * process; the VM itself is owned by the workspace's supervisor, reached over
 * its control socket with the agent protocol.
 */
import { trace } from "../util/trace.js";
import fs from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import { ensurePrivateDir, writeFileAtomic, type PyroPaths } from "../config/paths.js";
import type { EnvironmentCache } from "../environments/cache.js";
import { DEFAULT_ENVIRONMENT, findCatalogEntry } from "../environments/catalog.js";
import { ErrorCodes, PyroError, isPyroError } from "../errors.js";
import { AgentClient, DEFAULT_MAX_OUTPUT_BYTES } from "../guest/client.js";
import type { DirEntry } from "../protocol/messages.js";
import type { ProgressFn } from "../util/progress.js";
import { commandLine, processAlive, processesMentioning } from "../util/procs.js";
import { EMPTY_TAR, isEmptyTar, safeExtract, type SkippedEntry } from "./archives.js";
import { diffTrees, readTree, type DiffResult } from "./diff.js";
import { appendEvent, readEvents, type NewReviewEvent } from "./events.js";
import { appendJournal, clip, readJournal, type JournalEntry } from "./journal.js";
import { summarize, type WorkspaceSummary } from "./summary.js";
import {
  DEFAULT_MEM_MIB,
  DEFAULT_VCPUS,
  requireQemu,
  reserveSlot,
  validateResources,
  type LaunchContext,
} from "./launch.js";
import {
  encodeOutput,
  outputFields,
  prepareCommand,
  type CommandOutputFields,
  type OutputEncoding,
} from "./output.js";
import { planPatch, workspacePath, type PatchFileChange } from "./patch.js";
import { emptySeed, prepareSeed, type OriginKind, type PreparedSeed } from "./seed.js";
import { claimStandby, spawnStandby } from "./standby.js";
import { startSupervisor } from "./supervisor-process.js";
import {
  WorkspaceStore,
  newWorkspaceId,
  validateLabel,
  validateName,
  type WorkspaceRecord,
  type WorkspaceState,
} from "./store.js";

export const WORKSPACE_ROOT = "/workspace";
/** The snapshot every workspace has: /workspace as create left it. */
export const BASELINE = "baseline";

export interface WorkspaceSnapshot {
  name: string;
  created_at: string;
  bytes: number;
  /** false for the baseline. */
  deletable: boolean;
}
export const DEFAULT_READ_BYTES = 65536;
const PATCH_READ_LIMIT = 16 * 1024 * 1024;

export interface Workspace {
  id: string;
  name: string | null;
  labels: Record<string, string>;
  environment: string;
  state: WorkspaceState;
  failure_reason: string | null;
  vcpu_count: number;
  mem_mib: number;
  network_policy: "off";
  created_at: string;
  last_activity_at: string;
  expires_at: string | null;
  origin_kind: OriginKind;
  origin_ref: string | null;
  seed_files: number;
  seed_bytes: number;
  command_count: number;
  boot_ms: number | null;
  accel: "kvm" | "tcg" | null;
  /** "warm" when the VM was restored from a prepared snapshot, "cold" when it booted. */
  boot_kind: "warm" | "cold" | null;
  /** Why a cold boot when a warm one was wanted, or "took over a standby VM". */
  boot_note: string | null;
  reset_count: number;
}

export interface CreateWorkspaceOptions {
  environment?: string;
  seedPath?: string;
  name?: string;
  labels?: Record<string, string>;
  vcpuCount?: number;
  memMib?: number;
  ttlSeconds?: number;
  /** Say the seed came from here instead (e.g. the repository a project source cloned). */
  origin?: { kind: OriginKind; ref: string };
}

export interface ExecOptions {
  timeoutSeconds?: number;
  onStdout?: (bytes: Buffer) => void;
  onStderr?: (bytes: Buffer) => void;
}

export interface WorkspaceExecResult extends CommandOutputFields {
  workspace_id: string;
  sequence: number;
  command: string;
  cwd: string;
  exit_code: number;
  duration_ms: number;
}

export function toWorkspace(record: WorkspaceRecord, commandCount: number): Workspace {
  return {
    id: record.id,
    name: record.name,
    labels: record.labels,
    environment: record.environment,
    state: record.state,
    failure_reason: record.failure_reason,
    vcpu_count: record.vcpu_count,
    mem_mib: record.mem_mib,
    network_policy: record.network_policy,
    created_at: record.created_at,
    last_activity_at: record.last_activity_at,
    expires_at: record.expires_at,
    origin_kind: record.seed.origin_kind,
    origin_ref: record.seed.origin_ref,
    seed_files: record.seed.files,
    seed_bytes: record.seed.bytes,
    command_count: commandCount,
    boot_ms: record.boot_ms,
    accel: record.accel,
    boot_kind: record.boot_kind ?? null,
    boot_note: record.boot_note ?? null,
    reset_count: record.reset_count ?? 0,
  };
}

export class WorkspaceService {
  readonly store: WorkspaceStore;

  constructor(
    private readonly paths: PyroPaths,
    private readonly cache: EnvironmentCache,
    private readonly progress: ProgressFn,
    private readonly maxRunning: number,
  ) {
    this.store = new WorkspaceStore(paths);
  }

  private get launch(): LaunchContext {
    return {
      paths: this.paths,
      cache: this.cache,
      progress: this.progress,
      maxRunning: this.maxRunning,
    };
  }

  private payload(record: WorkspaceRecord): Workspace {
    return toWorkspace(record, readJournal(this.store.file(record.id, "journal.jsonl")).length);
  }

  // ---- lifecycle ---------------------------------------------------------

  async create(
    options: CreateWorkspaceOptions = {},
  ): Promise<Workspace & { seed_skipped: SkippedEntry[] }> {
    const environment = options.environment ?? DEFAULT_ENVIRONMENT;
    findCatalogEntry(environment);
    const vcpus = options.vcpuCount ?? DEFAULT_VCPUS;
    const memMib = options.memMib ?? DEFAULT_MEM_MIB;
    validateResources(vcpus, memMib);
    const name = options.name === undefined ? null : validateName(options.name);
    const labels = options.labels ?? {};
    for (const [key, value] of Object.entries(labels)) validateLabel(key, value);
    if (
      options.ttlSeconds !== undefined &&
      (!Number.isFinite(options.ttlSeconds) || options.ttlSeconds <= 0)
    ) {
      throw new PyroError(
        ErrorCodes.UsageError,
        `ttl must be a positive number of seconds, got ${options.ttlSeconds}`,
      );
    }
    trace("create: start");
    requireQemu(this.paths.hostCache);
    this.reapExpired();
    // Everything slow or fallible that needs no VM happens before a slot is taken.
    const seed: PreparedSeed = options.seedPath ? await prepareSeed(options.seedPath) : emptySeed();
    try {
      const resolved = await this.cache.ensure(environment, this.progress);
      await this.cache.ensureRuntime(this.progress);
      const now = new Date();
      const record: WorkspaceRecord = {
        id: newWorkspaceId(),
        name,
        labels,
        environment,
        vcpu_count: vcpus,
        mem_mib: memMib,
        state: "starting",
        failure_reason: null,
        created_at: now.toISOString(),
        last_activity_at: now.toISOString(),
        expires_at: options.ttlSeconds
          ? new Date(now.getTime() + options.ttlSeconds * 1000).toISOString()
          : null,
        network_policy: "off",
        seed: {
          origin_kind: options.origin?.kind ?? seed.origin_kind,
          origin_ref: options.origin?.ref ?? seed.origin_ref,
          files: seed.files,
          bytes: seed.bytes,
        },
        supervisor_pid: null,
        qemu_pid: null,
        busy_pid: process.pid,
        boot_ms: null,
        accel: null,
        baseline_ready: false,
        rootfs_blob: resolved.manifest.artifacts.rootfs.sha256,
      };
      trace("create: environment ready");
      await reserveSlot(this.launch, `workspace ${name ?? record.id}`, () => {
        if (name !== null) this.assertNameFree(name, record.id);
        this.store.create(record);
      });
      const id = record.id;
      try {
        this.progress(`starting workspace ${name ?? id}`);
        await this.startFresh(record);
        trace("create: supervisor ready");
        const seedTar = seed.tarFile;
        if (seedTar) {
          await this.withAgent(id, async (agent) => {
            this.progress(`seeding ${WORKSPACE_ROOT} from ${seed.origin_ref}`);
            await agent.tarIn(WORKSPACE_ROOT, fs.createReadStream(seedTar), WORKSPACE_ROOT);
            await this.captureBaseline(id, agent);
          });
        } else {
          // /workspace starts empty (the environment ships it so): no need to ask the guest.
          writeFileAtomic(this.store.file(id, "baseline.tar"), EMPTY_TAR);
        }
        trace("create: baseline captured");
      } catch (error) {
        await this.destroy(id);
        throw error;
      }
      const done = await this.store.update(id, (r) => {
        r.busy_pid = null;
        r.baseline_ready = true;
        r.last_activity_at = new Date().toISOString();
      });
      return { ...this.payload(done), seed_skipped: seed.skipped };
    } finally {
      seed.cleanup();
    }
  }

  /** /workspace right now, as the immutable baseline diff compares against. */
  private async captureBaseline(id: string, agent: AgentClient): Promise<void> {
    const file = this.store.file(id, "baseline.tar");
    const tmp = `${file}.tmp-${process.pid}`;
    const out = fs.createWriteStream(tmp, { mode: 0o600 });
    await agent.tarOut(WORKSPACE_ROOT, (bytes) => out.write(bytes), WORKSPACE_ROOT);
    await new Promise<void>((resolve, reject) =>
      out.end((error?: Error | null) => (error ? reject(error) : resolve())),
    );
    fs.renameSync(tmp, file);
  }

  private assertNameFree(name: string, exceptId: string): void {
    const holder = this.store.all().find((r) => r.name === name && r.id !== exceptId);
    if (holder) {
      throw new PyroError(ErrorCodes.Conflict, `the name "${name}" is taken by ${holder.id}`, {
        hint: "choose another name, or rename or delete that workspace",
      });
    }
  }

  list(): Workspace[] {
    this.reapExpired();
    return this.store
      .all()
      .sort((a, b) => b.last_activity_at.localeCompare(a.last_activity_at))
      .map((r) => this.payload(r));
  }

  status(idOrName: string): Workspace {
    return this.payload(this.store.resolve(idOrName));
  }

  async update(
    idOrName: string,
    changes: { name?: string; labels?: Record<string, string>; clearLabels?: string[] },
  ): Promise<Workspace> {
    const record = this.store.resolve(idOrName);
    if (changes.name !== undefined) validateName(changes.name);
    for (const [key, value] of Object.entries(changes.labels ?? {})) validateLabel(key, value);
    if (changes.name !== undefined) this.assertNameFree(changes.name, record.id);
    const updated = await this.store.update(record.id, (r) => {
      if (changes.name !== undefined) r.name = changes.name;
      for (const key of changes.clearLabels ?? []) delete r.labels[key];
      Object.assign(r.labels, changes.labels ?? {});
      r.last_activity_at = new Date().toISOString();
    });
    return this.payload(updated);
  }

  async stop(idOrName: string): Promise<Workspace> {
    const record = this.store.resolve(idOrName);
    if (record.state === "started") {
      this.progress(`stopping ${record.name ?? record.id}`);
      try {
        await this.withAgent(record.id, (agent) => agent.call("pyro.stop", {}));
      } catch (error) {
        if (!isPyroError(error) || error.code !== ErrorCodes.VmDied) throw error;
        // The supervisor exits right after answering; a closed connection is expected.
      }
      await waitUntil(() => !processAlive(record.supervisor_pid ?? -1), 30_000);
    }
    this.killProcesses(this.store.readRaw(record.id) ?? record);
    const stopped = await this.store.update(record.id, (r) => {
      r.state = "stopped";
      r.supervisor_pid = null;
      r.qemu_pid = null;
      r.busy_pid = null;
      r.last_activity_at = new Date().toISOString();
    });
    return this.payload(stopped);
  }

  async start(idOrName: string): Promise<Workspace> {
    const record = this.store.resolve(idOrName);
    if (record.state === "started") return this.payload(record);
    await this.bringUp(record);
    const current = this.store.readRaw(record.id);
    if (current && !current.baseline_ready) {
      // The create that made this workspace was interrupted before its baseline: take it now.
      await this.withAgent(record.id, (agent) => this.captureBaseline(record.id, agent));
    }
    const started = await this.store.update(record.id, (r) => {
      r.busy_pid = null;
      r.baseline_ready = true;
      r.last_activity_at = new Date().toISOString();
    });
    return this.payload(started);
  }

  /**
   * Start a workspace's supervisor (and so its VM) under the running limit.
   * `fresh`: its disk is gone and may come from the warm snapshot (reset).
   */
  private async bringUp(record: WorkspaceRecord, fresh = false): Promise<void> {
    requireQemu(this.paths.hostCache);
    this.killProcesses(record);
    await this.cache.ensure(record.environment, this.progress);
    await this.cache.ensureRuntime(this.progress);
    await reserveSlot(this.launch, `workspace ${record.name ?? record.id}`, () => {
      const raw = this.store.readRaw(record.id);
      if (!raw)
        throw new PyroError(ErrorCodes.WorkspaceNotFound, `workspace ${record.id} was deleted`);
      this.store.write({ ...raw, state: "starting", busy_pid: process.pid, failure_reason: null });
    });
    this.progress(`starting workspace ${record.name ?? record.id}`);
    if (fresh) await this.startFresh(record);
    else await startSupervisor(this.paths, record.id, this.store.file(record.id, "supervisor.log"));
  }

  /**
   * Start a workspace on a fresh disk: take over the standby VM of its
   * environment and size when one is ready (standby.ts), otherwise start its
   * own supervisor (a warm restore or a cold boot). When it came up warm, a
   * standby is refilled in the background for the next create or reset.
   */
  private async startFresh(record: WorkspaceRecord): Promise<void> {
    const slot = {
      environment: record.environment,
      vcpus: record.vcpu_count,
      memMib: record.mem_mib,
    };
    let claimed = await claimStandby(this.paths, this.cache, slot, record.id);
    // A standby that answered too late may have taken it over all the same: never start a second VM.
    const now = this.store.readRaw(record.id);
    if (!claimed && now?.state === "started" && processAlive(now.supervisor_pid ?? -1)) {
      claimed = true;
    }
    if (!claimed) {
      await startSupervisor(this.paths, record.id, this.store.file(record.id, "supervisor.log"));
    }
    if (this.store.readRaw(record.id)?.boot_kind === "warm") spawnStandby(this.paths, slot);
  }

  /**
   * The normal retry step: a fresh machine (processes, /tmp, everything outside
   * /workspace as the environment ships it; restored from the warm snapshot
   * when there is one), /workspace equal to the baseline or a named snapshot,
   * and a new journal. Id, name and labels stay.
   */
  async reset(
    idOrName: string,
    options: { snapshot?: string } = {},
  ): Promise<Workspace & { restored_from: string }> {
    const record = this.store.resolve(idOrName);
    const snapshot = options.snapshot ?? BASELINE;
    const source = this.snapshotFile(record, snapshot);
    this.killProcesses(record);
    fs.rmSync(this.store.file(record.id, "disk.qcow2"), { force: true });
    fs.rmSync(this.store.file(record.id, "journal.jsonl"), { force: true });
    fs.rmSync(this.store.file(record.id, EVENTS_FILE), { force: true });
    await this.store.update(record.id, (r) => {
      r.exec_sequence = 0;
      r.supervisor_pid = null;
      r.qemu_pid = null;
      r.state = "stopped";
    });
    await this.bringUp(record, true);
    if (!isEmptyTar(source)) {
      this.progress(`restoring ${WORKSPACE_ROOT} from ${snapshot}`);
      await this.withAgent(record.id, (agent) =>
        agent.tarIn(WORKSPACE_ROOT, fs.createReadStream(source), WORKSPACE_ROOT),
      );
    }
    const reset = await this.store.update(record.id, (r) => {
      r.busy_pid = null;
      r.last_activity_at = new Date().toISOString();
      r.reset_count = (r.reset_count ?? 0) + 1;
      r.reset_at = new Date().toISOString();
    });
    return { ...this.payload(reset), restored_from: snapshot };
  }

  /**
   * A new workspace that starts as a copy of another's current state: its
   * disk, and when the source is running, its memory too (processes, /tmp).
   * The source pauses for the copy and then runs on. Baseline and named
   * snapshots are copied; the journal starts empty.
   */
  async fork(
    idOrName: string,
    options: { name?: string } = {},
  ): Promise<Workspace & { forked_from: string }> {
    const source = this.store.resolve(idOrName);
    const name = options.name === undefined ? null : validateName(options.name);
    if (source.state !== "started" && source.state !== "stopped") throw notStarted(source);
    requireQemu(this.paths.hostCache);
    const now = new Date().toISOString();
    const record: WorkspaceRecord = {
      ...source,
      id: newWorkspaceId(),
      name,
      state: "stopped",
      failure_reason: null,
      created_at: now,
      last_activity_at: now,
      supervisor_pid: null,
      qemu_pid: null,
      busy_pid: null,
      boot_ms: null,
      exec_sequence: 0,
      reset_count: 0,
      restore_from: null,
      forked_from: source.id,
    };
    await reserveSlot({ ...this.launch, maxRunning: Number.MAX_SAFE_INTEGER }, "a fork", () => {
      if (name !== null) this.assertNameFree(name, record.id);
      this.store.create(record);
    });
    const id = record.id;
    try {
      for (const file of ["baseline.tar"]) {
        if (fs.existsSync(this.store.file(source.id, file)))
          fs.copyFileSync(this.store.file(source.id, file), this.store.file(id, file));
      }
      const snapshots = path.join(this.store.dir(source.id), "snapshots");
      if (fs.existsSync(snapshots))
        fs.cpSync(snapshots, path.join(this.store.dir(id), "snapshots"), { recursive: true });
      const disk = this.store.file(id, "disk.qcow2");
      if (source.state === "started") {
        this.progress(`copying ${source.name ?? source.id} (memory and disk)`);
        const memory = this.store.file(id, "fork-memory.bin");
        await this.withAgent(source.id, (agent) => agent.call("pyro.fork", { memory, disk }));
        await this.store.update(id, (r) => {
          r.restore_from = memory;
        });
      } else {
        fs.copyFileSync(this.store.file(source.id, "disk.qcow2"), disk);
      }
      fs.chmodSync(disk, 0o600);
      const started = await this.start(id);
      return { ...started, forked_from: source.id };
    } catch (error) {
      await this.destroy(id);
      throw error;
    }
  }

  // ---- named snapshots of /workspace --------------------------------------

  private snapshotFile(record: WorkspaceRecord, name: string): string {
    const file =
      name === BASELINE
        ? this.store.file(record.id, "baseline.tar")
        : path.join(this.store.dir(record.id), "snapshots", `${name}.tar`);
    if (!fs.existsSync(file)) {
      const known = this.snapshotList(record).map((s) => s.name);
      throw new PyroError(
        ErrorCodes.SnapshotNotFound,
        `workspace ${record.name ?? record.id} has no snapshot "${name}"`,
        {
          hint: `snapshots: ${known.join(", ")}`,
        },
      );
    }
    return file;
  }

  private snapshotList(record: WorkspaceRecord): WorkspaceSnapshot[] {
    const list: WorkspaceSnapshot[] = [];
    const baseline = this.store.file(record.id, "baseline.tar");
    if (fs.existsSync(baseline)) {
      list.push({
        name: BASELINE,
        created_at: record.created_at,
        bytes: fs.statSync(baseline).size,
        deletable: false,
      });
    }
    const dir = path.join(this.store.dir(record.id), "snapshots");
    if (fs.existsSync(dir)) {
      for (const file of fs
        .readdirSync(dir)
        .filter((f) => f.endsWith(".tar"))
        .sort()) {
        const stat = fs.statSync(path.join(dir, file));
        list.push({
          name: file.slice(0, -4),
          created_at: stat.mtime.toISOString(),
          bytes: stat.size,
          deletable: true,
        });
      }
    }
    return list;
  }

  listSnapshots(idOrName: string): { workspace_id: string; snapshots: WorkspaceSnapshot[] } {
    const record = this.store.resolve(idOrName);
    return { workspace_id: record.id, snapshots: this.snapshotList(record) };
  }

  /** Save /workspace as it is now under `name`. */
  async createSnapshot(
    idOrName: string,
    name: string,
  ): Promise<{ workspace_id: string } & WorkspaceSnapshot> {
    const record = this.store.resolve(idOrName);
    if (name === BASELINE)
      throw new PyroError(
        ErrorCodes.Conflict,
        "baseline is taken at create and cannot be replaced",
      );
    validateName(name);
    const dir = ensurePrivateDir(path.join(this.store.dir(record.id), "snapshots"));
    const file = path.join(dir, `${name}.tar`);
    if (fs.existsSync(file)) {
      throw new PyroError(ErrorCodes.Conflict, `snapshot "${name}" already exists`, {
        hint: `delete it first (\`pyro workspace snapshot delete ${record.name ?? record.id} ${name}\`) or choose another name`,
      });
    }
    const tmp = `${file}.tmp-${process.pid}`;
    const out = fs.createWriteStream(tmp, { mode: 0o600 });
    try {
      await this.withAgent(record.id, (agent) =>
        agent.tarOut(WORKSPACE_ROOT, (bytes) => out.write(bytes), WORKSPACE_ROOT),
      );
      await new Promise<void>((resolve, reject) =>
        out.end((error?: Error | null) => (error ? reject(error) : resolve())),
      );
      fs.renameSync(tmp, file);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    this.recordEvent(record.id, { kind: "snapshot_create", name });
    await this.touch(record.id);
    const stat = fs.statSync(file);
    return {
      workspace_id: record.id,
      name,
      created_at: stat.mtime.toISOString(),
      bytes: stat.size,
      deletable: true,
    };
  }

  deleteSnapshot(
    idOrName: string,
    name: string,
  ): { workspace_id: string; name: string; deleted: true } {
    const record = this.store.resolve(idOrName);
    if (name === BASELINE) {
      throw new PyroError(ErrorCodes.Conflict, "the baseline snapshot cannot be deleted", {
        hint: "it is what diff and reset compare against",
      });
    }
    fs.rmSync(this.snapshotFile(record, name));
    this.recordEvent(record.id, { kind: "snapshot_delete", name });
    return { workspace_id: record.id, name, deleted: true };
  }

  async delete(
    idOrName: string,
  ): Promise<{ workspace_id: string; name: string | null; deleted: true }> {
    const record = this.store.resolve(idOrName);
    await this.destroy(record.id);
    return { workspace_id: record.id, name: record.name, deleted: true };
  }

  /** Remove a workspace: it disappears atomically (rename), then its processes and files go. */
  private async destroy(id: string): Promise<void> {
    const raw = this.store.readRaw(id);
    const graveyard = path.join(this.store.root, `.deleting-${id}-${process.pid}`);
    try {
      fs.renameSync(this.store.dir(id), graveyard);
    } catch {
      return; // already gone
    }
    if (raw) this.killProcesses(raw);
    fs.rmSync(graveyard, { recursive: true, force: true });
  }

  /**
   * SIGKILL whatever still runs for a workspace: its supervisor and QEMU, found
   * by their command lines (which name the workspace) so that a record that
   * lost track of them (an interrupted create) cannot leak them.
   */
  private killProcesses(record: WorkspaceRecord): void {
    for (const pid of processesMentioning(record.id)) {
      if (pid === process.pid || !isWorkspaceProcess(pid)) continue;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  }

  /** Delete workspaces whose expiry has passed; leftovers of interrupted deletes too. */
  reapExpired(): string[] {
    const reaped: string[] = [];
    const now = Date.now();
    for (const record of this.store.all()) {
      if (record.expires_at && Date.parse(record.expires_at) <= now) {
        void this.destroy(record.id);
        reaped.push(record.id);
      }
    }
    if (fs.existsSync(this.store.root)) {
      for (const name of fs.readdirSync(this.store.root)) {
        const pid = Number(/^\.deleting-ws_[0-9a-f]+-(\d+)$/.exec(name)?.[1]);
        if (pid && !processAlive(pid))
          fs.rmSync(path.join(this.store.root, name), { recursive: true, force: true });
      }
    }
    return reaped;
  }

  // ---- working inside ----------------------------------------------------

  /** Connect to a started workspace's supervisor and run `fn` with the agent. */
  private async withAgent<T>(id: string, fn: (agent: AgentClient) => Promise<T>): Promise<T> {
    const record = this.store.read(id);
    if (!record) throw new PyroError(ErrorCodes.WorkspaceNotFound, `workspace ${id} was deleted`);
    if (
      record.state !== "started" &&
      !(record.state === "starting" && record.busy_pid === process.pid)
    ) {
      throw notStarted(record);
    }
    let agent: AgentClient;
    try {
      agent = await AgentClient.connectUnix(this.store.file(id, "control.sock"));
    } catch {
      throw notStarted(this.store.read(id) ?? record);
    }
    try {
      return await fn(agent);
    } catch (error) {
      throw translateGuestError(error);
    } finally {
      agent.close();
    }
  }

  private async touch(id: string): Promise<void> {
    await this.store
      .update(id, (r) => {
        r.last_activity_at = new Date().toISOString();
      })
      .catch(() => {});
  }

  async exec(
    idOrName: string,
    command: string | string[],
    options: ExecOptions = {},
  ): Promise<WorkspaceExecResult> {
    const record = this.store.resolve(idOrName);
    const { argv, timeoutMs } = prepareCommand(
      command,
      options.timeoutSeconds,
      "pyro workspace exec ID -- COMMAND…",
    );
    const commandText = argv[2]!;
    if (record.state !== "started") throw notStarted(record);
    const updated = await this.store.update(record.id, (r) => {
      r.exec_sequence = (r.exec_sequence ?? 0) + 1;
      r.last_activity_at = new Date().toISOString();
    });
    const sequence = updated.exec_sequence ?? 1;
    const startedAt = new Date().toISOString();
    const output = await this.withAgent(record.id, (agent) =>
      agent.exec(
        {
          argv,
          cwd: WORKSPACE_ROOT,
          timeout_ms: timeoutMs,
          max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        },
        { onStdout: options.onStdout, onStderr: options.onStderr },
      ),
    );
    const result: WorkspaceExecResult = {
      workspace_id: record.id,
      sequence,
      command: commandText,
      cwd: WORKSPACE_ROOT,
      exit_code: output.exit_code,
      ...outputFields(output),
      duration_ms: output.duration_ms,
    };
    const journalOut = clip(result.stdout);
    const journalErr = clip(result.stderr);
    const entry: JournalEntry = {
      sequence,
      command: commandText,
      cwd: WORKSPACE_ROOT,
      started_at: startedAt,
      duration_ms: result.duration_ms,
      exit_code: result.exit_code,
      timed_out: result.timed_out,
      stdout: journalOut.text,
      stderr: journalErr.text,
      stdout_encoding: result.stdout_encoding,
      stderr_encoding: result.stderr_encoding,
      truncated: result.truncated || journalOut.clipped || journalErr.clipped,
    };
    if (fs.existsSync(this.store.dir(record.id)))
      appendJournal(this.store.file(record.id, "journal.jsonl"), entry);
    return result;
  }

  logs(idOrName: string): { workspace_id: string; entries: JournalEntry[] } {
    const record = this.store.resolve(idOrName);
    return {
      workspace_id: record.id,
      entries: readJournal(this.store.file(record.id, "journal.jsonl")),
    };
  }

  async listFiles(
    idOrName: string,
    guestPath = ".",
    options: { recursive?: boolean } = {},
  ): Promise<{ workspace_id: string; path: string; entries: DirEntry[]; truncated: boolean }> {
    const record = this.store.resolve(idOrName);
    const target = workspacePath(guestPath);
    const listing = await this.withAgent(record.id, (agent) =>
      agent.listDir(target, { recursive: options.recursive ?? false, scope: WORKSPACE_ROOT }),
    );
    await this.touch(record.id);
    return { workspace_id: record.id, path: target, ...listing };
  }

  async readFile(
    idOrName: string,
    guestPath: string,
    options: { maxBytes?: number } = {},
  ): Promise<{
    workspace_id: string;
    path: string;
    content: string;
    encoding: OutputEncoding;
    size: number;
    bytes_read: number;
    truncated: boolean;
  }> {
    const record = this.store.resolve(idOrName);
    const target = workspacePath(guestPath);
    const maxBytes = options.maxBytes ?? DEFAULT_READ_BYTES;
    if (!Number.isInteger(maxBytes) || maxBytes <= 0) {
      throw new PyroError(
        ErrorCodes.UsageError,
        `max bytes must be a positive integer, got ${maxBytes}`,
      );
    }
    const file = await this.withAgent(record.id, (agent) =>
      agent.readFile(target, maxBytes, WORKSPACE_ROOT),
    );
    await this.touch(record.id);
    const { text, encoding } = encodeOutput(file.content);
    return {
      workspace_id: record.id,
      path: target,
      content: text,
      encoding,
      size: file.size,
      bytes_read: file.content.length,
      truncated: file.truncated,
    };
  }

  async writeFile(
    idOrName: string,
    guestPath: string,
    content: string | Buffer,
  ): Promise<{ workspace_id: string; path: string; bytes_written: number }> {
    const record = this.store.resolve(idOrName);
    const target = workspacePath(guestPath);
    if (target === WORKSPACE_ROOT)
      throw new PyroError(ErrorCodes.PathNotAllowed, "cannot write to /workspace itself");
    const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content, "utf8");
    const result = await this.withAgent(record.id, async (agent) => {
      const mode = await agent.readFile(target, 0, WORKSPACE_ROOT).then(
        (f) => f.mode,
        () => undefined,
      );
      return agent.writeFile(target, bytes, {
        parents: true,
        scope: WORKSPACE_ROOT,
        ...(mode ? { mode } : {}),
      });
    });
    this.recordEvent(record.id, { kind: "file_write", path: target, bytes: result.bytes_written });
    await this.touch(record.id);
    return { workspace_id: record.id, path: target, bytes_written: result.bytes_written };
  }

  async applyPatch(
    idOrName: string,
    patchText: string,
  ): Promise<{ workspace_id: string; applied: true; files: PatchFileChange[] }> {
    const record = this.store.resolve(idOrName);
    const files = await this.withAgent(record.id, async (agent) => {
      const modes = new Map<string, number>();
      const plan = await planPatch(patchText, async (target) => {
        try {
          const file = await agent.readFile(target, PATCH_READ_LIMIT, WORKSPACE_ROOT);
          if (file.truncated)
            throw new PyroError(ErrorCodes.PatchFailed, `${target} is too large to patch`);
          modes.set(target, file.mode);
          return file.content.toString("utf8");
        } catch (error) {
          if (isPyroError(error) && error.details?.guest_code === "not_found") return undefined;
          throw error;
        }
      });
      const done: typeof plan = [];
      try {
        for (const change of plan) {
          if (change.after === undefined) await agent.remove(change.target, WORKSPACE_ROOT);
          else {
            const mode = modes.get(change.target);
            await agent.writeFile(change.target, Buffer.from(change.after, "utf8"), {
              parents: true,
              scope: WORKSPACE_ROOT,
              ...(mode ? { mode } : {}),
            });
          }
          done.push(change);
        }
      } catch (error) {
        // Put back what was already written: all or nothing.
        for (const change of done.reverse()) {
          if (change.before === undefined)
            await agent.remove(change.target, WORKSPACE_ROOT).catch(() => {});
          else
            await agent
              .writeFile(change.target, Buffer.from(change.before, "utf8"), {
                scope: WORKSPACE_ROOT,
              })
              .catch(() => {});
        }
        throw error;
      }
      return plan.map(({ path: p, status }) => ({ path: p, status }));
    });
    this.recordEvent(record.id, { kind: "patch_apply", files });
    await this.touch(record.id);
    return { workspace_id: record.id, applied: true, files };
  }

  /**
   * One review of what happened since the last reset (or create): commands
   * with their exit codes, files changed against the baseline, and the
   * writes, patches, exports, syncs and snapshots made.
   */
  async summary(idOrName: string): Promise<WorkspaceSummary> {
    const record = this.store.resolve(idOrName);
    const diff = record.state === "started" ? await this.diff(record.id) : undefined;
    return summarize({
      workspace: { ...this.payload(record), reset_at: record.reset_at ?? null },
      journal: readJournal(this.store.file(record.id, "journal.jsonl")),
      events: readEvents(this.store.file(record.id, EVENTS_FILE)),
      diff,
    });
  }

  private recordEvent(id: string, event: NewReviewEvent): void {
    try {
      appendEvent(this.store.file(id, EVENTS_FILE), event);
    } catch {
      // deleted meanwhile: nothing to review
    }
  }

  async diff(idOrName: string): Promise<{ workspace_id: string } & DiffResult> {
    const record = this.store.resolve(idOrName);
    const baselineFile = this.store.file(record.id, "baseline.tar");
    if (!fs.existsSync(baselineFile)) {
      throw new PyroError(ErrorCodes.WorkspaceState, `workspace ${record.id} has no baseline yet`, {
        hint: `start it (\`pyro workspace start ${record.id}\`) to capture one`,
      });
    }
    const current = await this.withAgent(record.id, async (agent) => {
      const stream = new PassThrough();
      const tree = readTree(stream);
      await agent
        .tarOut(WORKSPACE_ROOT, (bytes) => stream.write(bytes), WORKSPACE_ROOT)
        .finally(() => stream.end());
      return tree;
    });
    const baseline = await readTree(fs.createReadStream(baselineFile));
    await this.touch(record.id);
    return { workspace_id: record.id, ...diffTrees(baseline, current) };
  }

  async export(
    idOrName: string,
    guestPath: string,
    output: string,
  ): Promise<{
    workspace_id: string;
    path: string;
    output: string;
    kind: "file" | "directory";
    bytes: number;
    skipped: SkippedEntry[];
  }> {
    const record = this.store.resolve(idOrName);
    const target = workspacePath(guestPath);
    const destination = path.resolve(output);
    if (fs.existsSync(destination)) {
      throw new PyroError(ErrorCodes.Conflict, `${destination} already exists`, {
        hint: "choose an output path that does not exist yet",
      });
    }
    const parent = path.dirname(destination);
    ensurePrivateDir(parent);
    const staging = fs.mkdtempSync(path.join(parent, `.pyro-export-`));
    try {
      const { kind, bytes, skipped } = await this.withAgent(record.id, async (agent) => {
        const stream = new PassThrough();
        const extracted = safeExtract(stream, staging);
        const result = await agent
          .tarOut(target, (chunk) => stream.write(chunk), WORKSPACE_ROOT)
          .finally(() => stream.end());
        return { kind: result.kind ?? "directory", bytes: result.bytes, skipped: await extracted };
      });
      const source = kind === "file" ? path.join(staging, path.posix.basename(target)) : staging;
      if (kind === "file" && !fs.existsSync(source)) {
        throw new PyroError(ErrorCodes.PathNotAllowed, `${target} could not be exported safely`, {
          details: { skipped },
        });
      }
      fs.renameSync(source, destination);
      this.recordEvent(record.id, { kind: "export", path: target, output: destination, bytes });
      await this.touch(record.id);
      return { workspace_id: record.id, path: target, output: destination, kind, bytes, skipped };
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
  }

  async syncPush(
    idOrName: string,
    source: string,
    dest = WORKSPACE_ROOT,
  ): Promise<{
    workspace_id: string;
    source: string;
    destination: string;
    origin_kind: OriginKind;
    files: number;
    bytes: number;
  }> {
    const record = this.store.resolve(idOrName);
    const destination = workspacePath(dest);
    if (record.state !== "started") throw notStarted(record);
    const seed = await prepareSeed(source);
    try {
      if (seed.tarFile) {
        const tarFile = seed.tarFile;
        await this.withAgent(record.id, (agent) =>
          agent.tarIn(destination, fs.createReadStream(tarFile), WORKSPACE_ROOT),
        );
      }
      this.recordEvent(record.id, {
        kind: "sync_push",
        source: path.resolve(source),
        destination,
        files: seed.files,
      });
      await this.touch(record.id);
      return {
        workspace_id: record.id,
        source: path.resolve(source),
        destination,
        origin_kind: seed.origin_kind,
        files: seed.files,
        bytes: seed.bytes,
      };
    } finally {
      seed.cleanup();
    }
  }
}

const EVENTS_FILE = "events.jsonl";

function notStarted(record: WorkspaceRecord): PyroError {
  const label = record.name ?? record.id;
  if (record.state === "failed") {
    return new PyroError(
      ErrorCodes.WorkspaceState,
      `workspace ${label} has failed: ${record.failure_reason ?? "unknown reason"}`,
      {
        hint: `start it again with \`pyro workspace start ${label}\` (its disk is kept)`,
      },
    );
  }
  return new PyroError(ErrorCodes.WorkspaceState, `workspace ${label} is ${record.state}`, {
    hint: `start it with \`pyro workspace start ${label}\``,
  });
}

/** Guest errors that mean something to the caller become their own codes. */
function translateGuestError(error: unknown): unknown {
  if (!isPyroError(error) || error.code !== ErrorCodes.GuestError) return error;
  const guestCode = error.details?.guest_code;
  if (guestCode === "path_not_allowed") {
    return new PyroError(ErrorCodes.PathNotAllowed, error.message, {
      hint: "stay inside /workspace; symlinks that lead out are refused",
    });
  }
  if (guestCode === "vm_died") return new PyroError(ErrorCodes.VmDied, error.message);
  return error;
}

/** A workspace supervisor or a QEMU: the only processes killProcesses may kill. */
function isWorkspaceProcess(pid: number): boolean {
  // A supervisor that took over a standby VM is titled "pyro supervisor.js <id>".
  const argv = commandLine(pid).split("\0");
  return argv.some((arg) => arg.includes("supervisor.js") || arg.includes("qemu-system"));
}

async function waitUntil(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}
