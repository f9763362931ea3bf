/**
 * Workspace lifecycle (contract §4): create (seed and baseline), list,
 * status, update, stop, start, fork and delete; starting a workspace's
 * supervisor under the running limit, on a standby VM when one is ready.
 */
import fs from "node:fs";
import path from "node:path";
import { requireQemu, reserveSlot, validateResources } from "../boot/launch.js";
import { writeFileAtomic } from "../config/paths.js";
import { DEFAULT_ENVIRONMENT, findCatalogEntry } from "../environments/catalog.js";
import { ErrorCodes, PyroError, isPyroError } from "../errors.js";
import type { AgentClient } from "../protocol/client.js";
import {
  endRuntime,
  kindOf,
  newWorkspaceId,
  type RecordKind,
  standbyServes,
  validateLabel,
  validateName,
  type OriginKind,
  type WorkspaceRecord,
} from "../records/store.js";
import { requireHostTools } from "../host/requirements.js";
import {
  hasNetwork,
  parseAllowedHostPorts,
  parseNetworkPolicy,
  type NetworkPolicy,
} from "../network/policy.js";
import { Redactor } from "../secrets/redaction.js";
import {
  claimStandby,
  liveStandby,
  spawnStandby,
  standbyEnabled,
  type StandbySlot,
} from "../supervisor/standby-pool.js";
import { startSupervisor } from "../supervisor/spawn.js";
import { commandLine, processAlive, processesMentioning, processRunning } from "../util/procs.js";
import { trace } from "../util/trace.js";
import { EMPTY_TAR, type SkippedEntry } from "./archives.js";
import {
  BASELINE_FILE,
  DISK_FILE,
  WORKSPACE_ROOT,
  notStarted,
  type WorkspaceContext,
} from "./context.js";
import type { Workspace } from "./payloads.js";

export type { RecordKind };
import {
  materializeSecrets,
  readSecretOptions,
  redactError,
  SECRETS_FILE,
  storeSecrets,
  type SecretOptions,
} from "./secrets.js";
import { emptySeed, prepareSeed, type PreparedSeed, type SeedMode } from "./seed.js";
import { DEFAULTS } from "../limits.js";

export interface CreateWorkspaceOptions {
  environment?: string;
  seedPath?: string;
  /** Which files of a git checkout seed it (default "worktree"); see seed.ts. */
  seedMode?: SeedMode;
  /** Seed the checkout's .git too. */
  includeGit?: boolean;
  name?: string;
  labels?: Record<string, string>;
  vcpuCount?: number;
  memMib?: number;
  ttlSeconds?: number;
  /** Say the seed came from here instead (e.g. the repository a project source cloned). */
  origin?: { kind: OriginKind; ref: string };
  /** "off" (default), "egress" or "egress+published-ports" (network/policy.ts). */
  networkPolicy?: string;
  /** Host loopback ports the guest may reach at 10.0.2.254 (needs a network policy). */
  allowHostPorts?: (number | string)[];
  /** Secrets: files under /run/pyro-secrets in the guest, redacted from all output (see SecretOptions). */
  secrets?: SecretOptions["secrets"];
  secretFiles?: SecretOptions["secretFiles"];
  /** "vm" for a bare one-shot VM (MCP vm_create): its own vm_ id, left out of workspace lists. */
  kind?: RecordKind;
}

export async function create(
  ctx: WorkspaceContext,
  options: CreateWorkspaceOptions = {},
): Promise<Workspace & { seed_skipped: SkippedEntry[]; environment_built: boolean }> {
  const environment = options.environment ?? DEFAULT_ENVIRONMENT;
  findCatalogEntry(environment);
  const vcpus = options.vcpuCount ?? DEFAULTS.vcpuCount;
  const memMib = options.memMib ?? DEFAULTS.memMib;
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
  const networkPolicy = parseNetworkPolicy(options.networkPolicy ?? "off");
  const allowHostPorts = parseAllowedHostPorts(networkPolicy, options.allowHostPorts ?? []);
  const secrets = readSecretOptions(options);
  const checked: CheckedCreate = {
    environment,
    vcpus,
    memMib,
    name,
    labels,
    networkPolicy,
    allowHostPorts,
    secrets,
  };
  // From here on an error could carry a secret (a guest's answer): it is redacted.
  return launchNew(ctx, options, checked).catch((error: unknown) => {
    throw redactError(new Redactor(Object.values(secrets)), error);
  });
}

/** What create checked, ready for the new workspace's record. */
interface CheckedCreate {
  environment: string;
  vcpus: number;
  memMib: number;
  name: string | null;
  labels: Record<string, string>;
  networkPolicy: NetworkPolicy;
  allowHostPorts: number[];
  secrets: Record<string, string>;
}

/** Create's second half: seed, record, VM, secrets, baseline. */
async function launchNew(
  ctx: WorkspaceContext,
  options: CreateWorkspaceOptions,
  checked: CheckedCreate,
): Promise<Workspace & { seed_skipped: SkippedEntry[]; environment_built: boolean }> {
  const { environment, vcpus, memMib, name, labels, networkPolicy, allowHostPorts, secrets } =
    checked;
  trace("create: start");
  requireQemu(ctx.paths.hostCache);
  if (hasNetwork(networkPolicy)) requireHostTools(["socat"]);
  reapExpired(ctx);
  // Everything slow or fallible that needs no VM happens before a slot is taken.
  const seed: PreparedSeed = options.seedPath
    ? await prepareSeed(options.seedPath, {
        ...(options.seedMode ? { mode: options.seedMode } : {}),
        ...(options.includeGit ? { includeGit: true } : {}),
      })
    : emptySeed();
  try {
    const resolved = await ctx.cache.ensure(environment, ctx.progress);
    const runtime = await ctx.cache.ensureRuntime(ctx.progress);
    const now = new Date();
    const record: WorkspaceRecord = {
      id: newWorkspaceId(options.kind),
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
      network_policy: networkPolicy,
      ...(allowHostPorts.length > 0 ? { allow_host_ports: allowHostPorts } : {}),
      ...(Object.keys(secrets).length > 0 ? { secrets: Object.keys(secrets).sort() } : {}),
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
    await reserveSlot(ctx.launch, `workspace ${name ?? record.id}`, () => {
      if (name !== null) assertNameFree(ctx, name, record.id);
      ctx.store.create(record);
      storeSecrets(ctx, record.id, secrets);
    });
    const id = record.id;
    try {
      ctx.progress(`starting workspace ${name ?? id}`);
      await startFresh(ctx, record);
      await materializeSecrets(ctx, record);
      trace("create: supervisor ready");
      const seedTar = seed.tarFile;
      if (seedTar) {
        await ctx.withAgent(id, async (agent) => {
          ctx.progress(`seeding ${WORKSPACE_ROOT} from ${seed.origin_ref}`);
          await agent.tarIn(WORKSPACE_ROOT, fs.createReadStream(seedTar), WORKSPACE_ROOT);
          await captureBaseline(ctx, id, agent);
        });
      } else {
        // /workspace starts empty (the environment ships it so): no need to ask the guest.
        writeFileAtomic(ctx.store.file(id, BASELINE_FILE), EMPTY_TAR);
      }
      trace("create: baseline captured");
    } catch (error) {
      await destroy(ctx, id);
      throw error;
    }
    const done = await ctx.store.update(id, (r) => {
      r.busy_pid = null;
      r.baseline_ready = true;
      r.last_activity_at = new Date().toISOString();
    });
    return {
      ...ctx.payload(done),
      seed_skipped: seed.skipped,
      environment_built: resolved.built === true || runtime.built === true,
    };
  } finally {
    seed.cleanup();
  }
}

/** /workspace right now, as the immutable baseline diff compares against. */
export async function captureBaseline(
  ctx: WorkspaceContext,
  id: string,
  agent: AgentClient,
): Promise<void> {
  const file = ctx.store.file(id, BASELINE_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  const out = fs.createWriteStream(tmp, { mode: 0o600 });
  await agent.tarOut(WORKSPACE_ROOT, (bytes) => out.write(bytes), WORKSPACE_ROOT);
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  fs.renameSync(tmp, file);
}

export function assertNameFree(ctx: WorkspaceContext, name: string, exceptId: string): void {
  const holder = ctx.store.all().find((r) => r.name === name && r.id !== exceptId);
  if (holder) {
    throw new PyroError(ErrorCodes.Conflict, `the name "${name}" is taken by ${holder.id}`, {
      hint: "choose another name, or rename or delete that workspace",
    });
  }
}

/** Workspaces, or with kind "vm" the one-shot VMs of vm_create; the latest used first. */
export function list(ctx: WorkspaceContext, kind: RecordKind = "workspace"): Workspace[] {
  reapExpired(ctx);
  return ctx.store
    .all()
    .filter((r) => kindOf(r.id) === kind)
    .sort((a, b) => b.last_activity_at.localeCompare(a.last_activity_at))
    .map((r) => ctx.payload(r));
}

export function status(ctx: WorkspaceContext, idOrName: string): Workspace {
  return ctx.payload(ctx.store.resolve(idOrName));
}

export async function update(
  ctx: WorkspaceContext,
  idOrName: string,
  changes: { name?: string; labels?: Record<string, string>; clearLabels?: string[] },
): Promise<Workspace> {
  const record = ctx.store.resolve(idOrName);
  if (changes.name !== undefined) validateName(changes.name);
  for (const [key, value] of Object.entries(changes.labels ?? {})) validateLabel(key, value);
  if (changes.name !== undefined) assertNameFree(ctx, changes.name, record.id);
  const updated = await ctx.store.update(record.id, (r) => {
    if (changes.name !== undefined) r.name = changes.name;
    for (const key of changes.clearLabels ?? []) delete r.labels[key];
    Object.assign(r.labels, changes.labels ?? {});
    r.last_activity_at = new Date().toISOString();
  });
  return ctx.payload(updated);
}

export async function stop(ctx: WorkspaceContext, idOrName: string): Promise<Workspace> {
  const record = ctx.store.resolve(idOrName);
  if (record.state === "started") {
    ctx.progress(`stopping ${record.name ?? record.id}`);
    try {
      await ctx.withAgent(record.id, (agent) => agent.request("pyro.stop", {}));
    } catch (error) {
      if (!isPyroError(error) || error.code !== ErrorCodes.VmDied) throw error;
      // The supervisor exits right after answering; a closed connection is expected.
    }
    await waitUntil(() => !processAlive(record.supervisor_pid ?? -1), 30_000);
  }
  killProcesses(ctx, ctx.store.readRaw(record.id) ?? record);
  const stopped = await ctx.store.update(record.id, (r) => {
    r.state = "stopped";
    r.supervisor_pid = null;
    r.qemu_pid = null;
    r.busy_pid = null;
    endRuntime(r, "the workspace stopped");
    r.last_activity_at = new Date().toISOString();
  });
  return ctx.payload(stopped);
}

export async function start(ctx: WorkspaceContext, idOrName: string): Promise<Workspace> {
  const record = ctx.store.resolve(idOrName);
  if (record.state === "started") return ctx.payload(record);
  await bringUp(ctx, record);
  return afterStart(ctx, record);
}

/** A workspace whose supervisor just answered: baseline (if missing) and bookkeeping. */
async function afterStart(ctx: WorkspaceContext, record: WorkspaceRecord): Promise<Workspace> {
  const current = ctx.store.readRaw(record.id);
  if (current && !current.baseline_ready) {
    // The create that made this workspace was interrupted before its baseline: take it now.
    await ctx.withAgent(record.id, (agent) => captureBaseline(ctx, record.id, agent));
  }
  const started = await ctx.store.update(record.id, (r) => {
    r.busy_pid = null;
    r.baseline_ready = true;
    r.last_activity_at = new Date().toISOString();
  });
  return ctx.payload(started);
}

/**
 * Start a workspace's supervisor (and so its VM) under the running limit.
 * `fresh`: its disk is gone and may come from the warm image (reset; the
 * caller has killed what ran).
 * `gate`: what must finish before the supervisor reads the record (a fork's copy).
 */
export async function bringUp(
  ctx: WorkspaceContext,
  record: WorkspaceRecord,
  fresh = false,
  gate?: Promise<unknown>,
): Promise<void> {
  requireQemu(ctx.paths.hostCache);
  if (!fresh) killProcesses(ctx, record);
  await ctx.cache.ensure(record.environment, ctx.progress);
  await ctx.cache.ensureRuntime(ctx.progress);
  // Under the workspace's lock: a disk tool reading the stopped disk finishes first (disk.ts).
  await ctx.store.locked(record.id, () =>
    reserveSlot(ctx.launch, `workspace ${record.name ?? record.id}`, () => {
      const raw = ctx.store.readRaw(record.id);
      if (!raw)
        throw new PyroError(ErrorCodes.WorkspaceNotFound, `workspace ${record.id} was deleted`);
      ctx.store.write({ ...raw, state: "starting", busy_pid: process.pid, failure_reason: null });
    }),
  );
  trace("bringUp: slot reserved");
  ctx.progress(`starting workspace ${record.name ?? record.id}`);
  if (fresh) await startFresh(ctx, record);
  else
    await startSupervisor(ctx.paths, record.id, ctx.store.file(record.id, "supervisor.log"), gate);
  trace("bringUp: supervisor ready");
  // /run/pyro-secrets is tmpfs: every boot, restore and reset writes the secrets again.
  await materializeSecrets(ctx, record);
}

/** After a warm start of a fresh VM: a standby for the next create or reset of its kind. */
export function refillStandby(ctx: WorkspaceContext, record: WorkspaceRecord): void {
  if (ctx.store.readRaw(record.id)?.boot_kind === "warm") spawnStandby(ctx.paths, slotOf(record));
}

/** The standby VM a fresh start of this workspace would take over is ready now. */
export function standbyReadyFor(ctx: WorkspaceContext, record: WorkspaceRecord): boolean {
  const slot = slotOf(record);
  return (
    standbyEnabled() &&
    standbyServes(slot, record) &&
    liveStandby(ctx.paths, slot)?.state === "ready"
  );
}

function slotOf(record: WorkspaceRecord): StandbySlot {
  return {
    environment: record.environment,
    vcpus: record.vcpu_count,
    memMib: record.mem_mib,
    network: hasNetwork(record.network_policy),
  };
}

/**
 * Start a workspace on a fresh disk: take over the standby VM of its
 * environment and size when one is ready (standby.ts), otherwise start its
 * own supervisor (a warm restore or a cold boot). When it came up warm, a
 * standby is refilled in the background for the next create or reset.
 */
export async function startFresh(ctx: WorkspaceContext, record: WorkspaceRecord): Promise<void> {
  const slot = slotOf(record);
  let claimed =
    standbyServes(slot, record) && (await claimStandby(ctx.paths, ctx.cache, slot, record.id));
  // A standby that answered too late may have taken it over all the same: never start a second VM.
  const now = ctx.store.readRaw(record.id);
  if (!claimed && now?.state === "started" && processAlive(now.supervisor_pid ?? -1)) {
    claimed = true;
  }
  if (!claimed) {
    await startSupervisor(ctx.paths, record.id, ctx.store.file(record.id, "supervisor.log"));
  }
  refillStandby(ctx, record);
}

/**
 * A new workspace that starts as a copy of another's current state: its
 * disk, and when the source is running, its memory too (processes, /tmp).
 * The source pauses for the copy and then runs on. Baseline and named
 * snapshots are copied; the journal starts empty.
 */
export async function fork(
  ctx: WorkspaceContext,
  idOrName: string,
  options: { name?: string } = {},
): Promise<Workspace & { forked_from: string }> {
  const source = ctx.store.resolve(idOrName);
  const name = options.name === undefined ? null : validateName(options.name);
  if (source.state !== "started" && source.state !== "stopped") throw notStarted(source);
  requireQemu(ctx.paths.hostCache);
  const now = new Date().toISOString();
  const record: WorkspaceRecord = {
    ...source,
    id: newWorkspaceId(kindOf(source.id)),
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
  await reserveSlot({ ...ctx.launch, maxRunning: Number.MAX_SAFE_INTEGER }, "a fork", () => {
    if (name !== null) assertNameFree(ctx, name, record.id);
    ctx.store.create(record);
  });
  const id = record.id;
  try {
    for (const file of [BASELINE_FILE, SECRETS_FILE]) {
      if (fs.existsSync(ctx.store.file(source.id, file)))
        fs.copyFileSync(ctx.store.file(source.id, file), ctx.store.file(id, file));
    }
    const snapshots = path.join(ctx.store.dir(source.id), "snapshots");
    if (fs.existsSync(snapshots))
      fs.cpSync(snapshots, path.join(ctx.store.dir(id), "snapshots"), { recursive: true });
    const disk = ctx.store.file(id, DISK_FILE);
    if (source.state !== "started") {
      fs.copyFileSync(ctx.store.file(source.id, DISK_FILE), disk);
      fs.chmodSync(disk, 0o600);
      return { ...(await start(ctx, id)), forked_from: source.id };
    }
    ctx.progress(`copying ${source.name ?? source.id} (memory and disk)`);
    // The fork's supervisor starts up while the parent is copied; it reads the record after.
    const copied = copyRunning(ctx, source.id, id);
    copied.catch(() => {});
    await bringUp(ctx, record, false, copied);
    trace("fork: started");
    return { ...(await afterStart(ctx, record)), forked_from: source.id };
  } catch (error) {
    await destroy(ctx, id);
    throw error;
  }
}

/** Have a running workspace's supervisor copy it for fork `id`; note in its record how to restore. */
async function copyRunning(ctx: WorkspaceContext, sourceId: string, id: string): Promise<void> {
  trace("fork: saving source");
  const disk = ctx.store.file(id, DISK_FILE);
  const memory = ctx.store.file(id, "fork-memory.bin");
  const delta = ctx.store.file(id, "fork-memory.delta");
  const copied = await ctx.withAgent(sourceId, (agent) =>
    agent.request("pyro.fork", { memory, disk, delta }),
  );
  fs.chmodSync(disk, 0o600);
  const base = deltaBase(copied, delta);
  await ctx.store.update(id, (r) => {
    r.restore_from = memory;
    r.restore_delta = base ? delta : null;
    r.restore_base = base;
  });
  trace("fork: source saved");
}

/** The RAM file a supervisor's pyro.fork answer says the delta it wrote goes over (null: none). */
function deltaBase(
  answer: { delta?: { file: unknown; base: unknown } },
  asked: string,
): string | null {
  const delta = answer.delta;
  if (delta?.file !== asked || typeof delta.base !== "string" || !path.isAbsolute(delta.base))
    return null;
  return delta.base;
}

export async function deleteWorkspace(
  ctx: WorkspaceContext,
  idOrName: string,
): Promise<{ workspace_id: string; name: string | null; deleted: true }> {
  const record = ctx.store.resolve(idOrName);
  await destroy(ctx, record.id);
  return { workspace_id: record.id, name: record.name, deleted: true };
}

/** Remove a workspace: it disappears atomically (rename), then its processes and files go. */
export async function destroy(ctx: WorkspaceContext, id: string): Promise<void> {
  const raw = ctx.store.readRaw(id);
  const graveyard = path.join(ctx.store.root, `.deleting-${id}-${process.pid}`);
  try {
    fs.renameSync(ctx.store.dir(id), graveyard);
  } catch {
    return; // already gone
  }
  if (raw) {
    const killed = killProcesses(ctx, raw);
    // A standby's QEMU does not name the workspace: it dies with its supervisor.
    if (raw.qemu_pid && isWorkspaceProcess(raw.qemu_pid)) killed.push(raw.qemu_pid);
    await waitGone(killed);
  }
  fs.rmSync(graveyard, { recursive: true, force: true });
}

/** Returns once processes just killed are gone, and with them every file and port they held. */
export async function waitGone(killed: number[], timeoutMs = 10_000): Promise<void> {
  await waitUntil(() => !killed.some(processRunning), timeoutMs);
}

/**
 * SIGKILL whatever still runs for a workspace: its supervisor and QEMU, found
 * by their command lines (which name the workspace) so that a record that
 * lost track of them (an interrupted create) cannot leak them.
 */
export function killProcesses(ctx: WorkspaceContext, record: WorkspaceRecord): number[] {
  const killed: number[] = [];
  for (const pid of processesMentioning(record.id)) {
    if (pid === process.pid || !isWorkspaceProcess(pid)) continue;
    try {
      process.kill(pid, "SIGKILL");
      killed.push(pid);
    } catch {
      // gone
    }
  }
  return killed;
}

/**
 * Delete workspaces whose expiry has passed (only those of one kind if
 * given); leftovers of interrupted deletes too.
 */
export function reapExpired(ctx: WorkspaceContext, kind?: RecordKind): string[] {
  const reaped: string[] = [];
  const now = Date.now();
  for (const record of ctx.store.all()) {
    if (kind && kindOf(record.id) !== kind) continue;
    if (record.expires_at && Date.parse(record.expires_at) <= now) {
      void destroy(ctx, record.id);
      reaped.push(record.id);
    }
  }
  if (fs.existsSync(ctx.store.root)) {
    for (const name of fs.readdirSync(ctx.store.root)) {
      const pid = Number(/^\.deleting-(?:ws|vm)_[0-9a-f]+-(\d+)$/.exec(name)?.[1]);
      if (pid && !processAlive(pid))
        fs.rmSync(path.join(ctx.store.root, name), { recursive: true, force: true });
    }
  }
  return reaped;
}

/** A workspace supervisor or a QEMU: the only processes killProcesses may kill. */
function isWorkspaceProcess(pid: number): boolean {
  // A supervisor that took over a standby VM is titled "pyro supervisor.js <id>".
  const argv = commandLine(pid).split("\0");
  return argv.some((arg) => arg.includes("supervisor.js") || arg.includes("qemu-system"));
}

async function waitUntil(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Polled finely: reset waits here on its way to answering.
  while (!predicate() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}
