/**
 * Named snapshots of /workspace (`baseline` always exists) and reset, the
 * normal retry step that brings a workspace back to one of them on a fresh
 * machine.
 */
import fs from "node:fs";
import path from "node:path";
import { ensurePrivateDir } from "../config/paths.js";
import { ErrorCodes, isPyroError, PyroError } from "../errors.js";
import { endRuntime, validateName, type WorkspaceRecord } from "../records/store.js";
import { isEmptyTar } from "./archives.js";
import { trace } from "../util/trace.js";
import {
  BASELINE,
  BASELINE_FILE,
  DISK_FILE,
  EVENTS_FILE,
  JOURNAL_FILE,
  WORKSPACE_ROOT,
  type WorkspaceContext,
} from "./context.js";
import { bringUp, killProcesses, refillStandby, standbyReadyFor, waitGone } from "./lifecycle.js";
import { materializeSecrets } from "./secrets.js";
import { WireCodes } from "../protocol/errors.js";
import type { NamedSnapshot, Workspace } from "./payloads.js";

/**
 * The normal retry step: a fresh machine (processes, /tmp, everything outside
 * /workspace as the environment ships it; restored from the warm image
 * when there is one), /workspace equal to the baseline or a named snapshot,
 * and a new journal. Id, name and labels stay.
 *
 * The fastest way first: taking over a ready standby VM; else, when the
 * workspace runs, its own supervisor swaps in a new VM (no new process);
 * else a new supervisor, as a start does.
 */
export async function reset(
  ctx: WorkspaceContext,
  idOrName: string,
  options: { snapshot?: string } = {},
): Promise<Workspace & { restored_from: string }> {
  const record = ctx.store.resolve(idOrName);
  const snapshot = options.snapshot ?? BASELINE;
  const source = snapshotFile(ctx, record, snapshot);
  trace("reset: start");
  fs.rmSync(ctx.store.file(record.id, JOURNAL_FILE), { force: true });
  fs.rmSync(ctx.store.file(record.id, EVENTS_FILE), { force: true });
  const inPlace =
    record.state === "started" &&
    !standbyReadyFor(ctx, record) &&
    (await resetInPlace(ctx, record));
  if (!inPlace) {
    const killed = killProcesses(ctx, record);
    fs.rmSync(ctx.store.file(record.id, DISK_FILE), { force: true });
    // Not fsynced: bringUp writes the record again at once.
    await ctx.store.update(
      record.id,
      (r) => {
        startOver(r);
        r.supervisor_pid = null;
        r.qemu_pid = null;
        r.state = "stopped";
      },
      { durable: false },
    );
    await bringUp(ctx, record, true);
    // The old QEMU's published ports are closed by the time reset answers.
    await waitGone(killed);
  }
  trace("reset: vm up");
  if (!isEmptyTar(source)) {
    ctx.progress(`restoring ${WORKSPACE_ROOT} from ${snapshot}`);
    await ctx.withAgent(record.id, (agent) =>
      agent.tarIn(WORKSPACE_ROOT, fs.createReadStream(source), WORKSPACE_ROOT),
    );
  }
  const reset = await ctx.store.update(record.id, (r) => {
    r.busy_pid = null;
    r.last_activity_at = new Date().toISOString();
    r.reset_count = (r.reset_count ?? 0) + 1;
    r.reset_at = new Date().toISOString();
  });
  return { ...ctx.payload(reset), restored_from: snapshot };
}

/** What every reset forgets, whichever way it goes: command numbering, services, shells, ports. */
function startOver(r: WorkspaceRecord): void {
  r.exec_sequence = 0;
  endRuntime(r, "the workspace was reset");
}

/**
 * Have the workspace's running supervisor replace its VM (pyro.reset).
 * False when it cannot (an older supervisor, or it is gone): the caller
 * starts over the usual way. A new VM that does not come up is an error.
 */
async function resetInPlace(ctx: WorkspaceContext, record: WorkspaceRecord): Promise<boolean> {
  try {
    await ctx.withAgent(record.id, async (agent) => {
      await ctx.store.update(record.id, (r) => {
        startOver(r);
        r.state = "starting";
        r.busy_pid = process.pid;
      });
      await agent.request("pyro.reset", {});
    });
  } catch (error) {
    const code = isPyroError(error) ? error.details?.guest_code : undefined;
    // Busy or a failed new VM are the answer; anything else means "not this way".
    if (code === WireCodes.Busy || code === WireCodes.ResetFailed) throw error;
    trace(`reset: not in place (${isPyroError(error) ? error.message : String(error)})`);
    return false;
  }
  await materializeSecrets(ctx, record); // the new VM's tmpfs has none yet
  refillStandby(ctx, record);
  return true;
}

export function snapshotFile(ctx: WorkspaceContext, record: WorkspaceRecord, name: string): string {
  const file =
    name === BASELINE
      ? ctx.store.file(record.id, BASELINE_FILE)
      : path.join(ctx.store.dir(record.id), "snapshots", `${name}.tar`);
  if (!fs.existsSync(file)) {
    const known = snapshotList(ctx, record).map((s) => s.name);
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

export function snapshotList(ctx: WorkspaceContext, record: WorkspaceRecord): NamedSnapshot[] {
  const list: NamedSnapshot[] = [];
  const baseline = ctx.store.file(record.id, BASELINE_FILE);
  if (fs.existsSync(baseline)) {
    list.push({
      name: BASELINE,
      created_at: record.created_at,
      bytes: fs.statSync(baseline).size,
      deletable: false,
    });
  }
  const dir = path.join(ctx.store.dir(record.id), "snapshots");
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

export function listSnapshots(
  ctx: WorkspaceContext,
  idOrName: string,
): { workspace_id: string; snapshots: NamedSnapshot[] } {
  const record = ctx.store.resolve(idOrName);
  return { workspace_id: record.id, snapshots: snapshotList(ctx, record) };
}

/** Save /workspace as it is now under `name`. */
export async function createSnapshot(
  ctx: WorkspaceContext,
  idOrName: string,
  name: string,
): Promise<{ workspace_id: string } & NamedSnapshot> {
  const record = ctx.store.resolve(idOrName);
  if (name === BASELINE)
    throw new PyroError(ErrorCodes.Conflict, "baseline is taken at create and cannot be replaced");
  validateName(name);
  const dir = ensurePrivateDir(path.join(ctx.store.dir(record.id), "snapshots"));
  const file = path.join(dir, `${name}.tar`);
  if (fs.existsSync(file)) {
    throw new PyroError(ErrorCodes.Conflict, `snapshot "${name}" already exists`, {
      fix: { kind: "delete_snapshot", workspace: record.name ?? record.id, snapshot: name },
    });
  }
  const tmp = `${file}.tmp-${process.pid}`;
  const out = fs.createWriteStream(tmp, { mode: 0o600 });
  try {
    await ctx.withAgent(record.id, (agent) =>
      agent.tarOut(WORKSPACE_ROOT, (bytes) => out.write(bytes), WORKSPACE_ROOT),
    );
    await new Promise<void>((resolve, reject) =>
      out.end((error?: Error | null) => (error ? reject(error) : resolve())),
    );
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  ctx.recordEvent(record.id, { kind: "snapshot_create", name });
  await ctx.touch(record.id);
  const stat = fs.statSync(file);
  return {
    workspace_id: record.id,
    name,
    created_at: stat.mtime.toISOString(),
    bytes: stat.size,
    deletable: true,
  };
}

export function deleteSnapshot(
  ctx: WorkspaceContext,
  idOrName: string,
  name: string,
): { workspace_id: string; name: string; deleted: true } {
  const record = ctx.store.resolve(idOrName);
  if (name === BASELINE) {
    throw new PyroError(ErrorCodes.Conflict, "the baseline snapshot cannot be deleted", {
      hint: "it is what diff and reset compare against",
    });
  }
  fs.rmSync(snapshotFile(ctx, record, name));
  ctx.recordEvent(record.id, { kind: "snapshot_delete", name });
  return { workspace_id: record.id, name, deleted: true };
}
