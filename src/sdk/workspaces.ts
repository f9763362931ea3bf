/**
 * `pyro.workspaces`: the public face of persistent workspaces. Every method
 * is one operation returning its snake_case payload; the store, supervisors
 * and agent connections stay behind it (a private field, not reachable from
 * outside). Defaults come from `DEFAULTS`; a project source, when the caller
 * has one, seeds creates that name no seed.
 */
import { DEFAULTS } from "../limits.js";
import type { DiffResult } from "../workspaces/diff.js";
import type { WorkspaceContext } from "../workspaces/context.js";
import { exec, logs, type ExecOptions } from "../workspaces/exec.js";
import { applyPatch, listFiles, readFile, writeFile } from "../workspaces/files.js";
import type { JournalEntry } from "../workspaces/journal.js";
import {
  create,
  deleteWorkspace,
  fork,
  list,
  reapExpired,
  start,
  status,
  stop,
  update,
  type CreateWorkspaceOptions as InternalCreateOptions,
} from "../workspaces/lifecycle.js";
import type {
  NamedSnapshot,
  Workspace,
  WorkspaceExecResult,
  WorkspaceService,
} from "../workspaces/payloads.js";
import { networkInfo } from "../workspaces/ports.js";
import {
  listServices,
  serviceLogs,
  serviceStatus,
  startService,
  stopService,
  type ServiceLogs,
  type ServiceStartOptions,
} from "../workspaces/services.js";
import { diff, summary } from "../workspaces/review.js";
import { createSnapshot, deleteSnapshot, listSnapshots, reset } from "../workspaces/snapshots.js";
import type { WorkspaceSummary } from "../workspaces/summary.js";
import { exportPath, syncPush } from "../workspaces/transfer.js";
import { ExecHandles, type ExecStatus } from "./exec-handles.js";
import type { ProjectSource } from "./project.js";

export interface CreateWorkspaceOptions extends Omit<InternalCreateOptions, "origin"> {
  /**
   * Seed from this project when no `seedPath` is given (contract §6); the
   * payload's origin_kind/origin_ref then name the project.
   */
  project?: ProjectSource;
  /** Start with an empty /workspace even when a project is given. */
  empty?: boolean;
}

export type { ExecOptions, ServiceStartOptions, ServiceLogs };

export interface ExecStartOptions {
  timeoutSeconds?: number;
}

export class Workspaces {
  readonly #ctx: WorkspaceContext;
  readonly #handles = new ExecHandles();

  constructor(ctx: WorkspaceContext) {
    this.#ctx = ctx;
  }

  /** Create and start a workspace; its baseline is captured now. */
  create(options: CreateWorkspaceOptions = {}): ReturnType<typeof create> {
    const { project, empty, ...rest } = options;
    const useProject = !rest.seedPath && !empty && project !== undefined;
    return create(this.#ctx, {
      ...rest,
      ...(useProject
        ? {
            seedPath: project.seedPath,
            origin: { kind: project.origin_kind, ref: project.origin_ref },
          }
        : {}),
    });
  }

  list(): Workspace[] {
    return list(this.#ctx);
  }

  status(idOrName: string): Workspace {
    return status(this.#ctx, idOrName);
  }

  update(
    idOrName: string,
    changes: { name?: string; labels?: Record<string, string>; clearLabels?: string[] },
  ): Promise<Workspace> {
    return update(this.#ctx, idOrName, changes);
  }

  stop(idOrName: string): Promise<Workspace> {
    return stop(this.#ctx, idOrName);
  }

  start(idOrName: string): Promise<Workspace> {
    return start(this.#ctx, idOrName);
  }

  delete(idOrName: string): Promise<{ workspace_id: string; name: string | null; deleted: true }> {
    return deleteWorkspace(this.#ctx, idOrName);
  }

  /** A new workspace starting as a copy of this one's disk and (when running) memory. */
  fork(idOrName: string, options: { name?: string } = {}): ReturnType<typeof fork> {
    return fork(this.#ctx, idOrName, options);
  }

  /** A fresh machine with /workspace at the baseline or a named snapshot; the journal starts over. */
  reset(idOrName: string, options: { snapshot?: string } = {}): ReturnType<typeof reset> {
    return reset(this.#ctx, idOrName, options);
  }

  /** Delete workspaces whose TTL has passed; returns their ids. */
  reapExpired(): string[] {
    return reapExpired(this.#ctx);
  }

  /** Run a command in /workspace (`sh -lc` for a string), journaled; resolves when it ends. */
  exec(
    idOrName: string,
    command: string | string[],
    options: ExecOptions = {},
  ): Promise<WorkspaceExecResult> {
    return exec(this.#ctx, idOrName, command, options);
  }

  /**
   * Start a command and return at once with its `command_id`; `execWait`
   * waits for it a bounded time. Output is collected meanwhile, so nothing is
   * lost between waits; finished results stay for an hour (and in the journal).
   */
  execStart(idOrName: string, command: string, options: ExecStartOptions = {}): ExecStatus {
    const ws = this.#ctx.store.resolve(idOrName); // an unknown workspace fails now, not later
    const timeoutSeconds = options.timeoutSeconds ?? DEFAULTS.execTimeoutSeconds;
    return this.#handles.start(ws.id, command, (onStdout, onStderr) =>
      exec(this.#ctx, ws.id, command, { timeoutSeconds, onStdout, onStderr }),
    );
  }

  /** Wait up to `waitSeconds` for a started command; its result, or its status while it runs. */
  execWait(commandId: string, waitSeconds: number): Promise<ExecStatus> {
    return this.#handles.wait(commandId, waitSeconds * 1000);
  }

  logs(idOrName: string): { workspace_id: string; entries: JournalEntry[] } {
    return logs(this.#ctx, idOrName);
  }

  listFiles(
    idOrName: string,
    guestPath = ".",
    options: { recursive?: boolean } = {},
  ): ReturnType<typeof listFiles> {
    return listFiles(this.#ctx, idOrName, guestPath, options);
  }

  readFile(
    idOrName: string,
    guestPath: string,
    options: { maxBytes?: number } = {},
  ): ReturnType<typeof readFile> {
    return readFile(this.#ctx, idOrName, guestPath, options);
  }

  writeFile(
    idOrName: string,
    guestPath: string,
    content: string | Buffer,
  ): ReturnType<typeof writeFile> {
    return writeFile(this.#ctx, idOrName, guestPath, content);
  }

  applyPatch(idOrName: string, patchText: string): ReturnType<typeof applyPatch> {
    return applyPatch(this.#ctx, idOrName, patchText);
  }

  diff(idOrName: string): Promise<{ workspace_id: string } & DiffResult> {
    return diff(this.#ctx, idOrName);
  }

  summary(idOrName: string): Promise<WorkspaceSummary> {
    return summary(this.#ctx, idOrName);
  }

  export(idOrName: string, guestPath: string, output: string): ReturnType<typeof exportPath> {
    return exportPath(this.#ctx, idOrName, guestPath, output);
  }

  syncPush(idOrName: string, source: string, dest?: string): ReturnType<typeof syncPush> {
    return syncPush(this.#ctx, idOrName, source, dest);
  }

  listSnapshots(idOrName: string): { workspace_id: string; snapshots: NamedSnapshot[] } {
    return listSnapshots(this.#ctx, idOrName);
  }

  createSnapshot(
    idOrName: string,
    name: string,
  ): Promise<{ workspace_id: string } & NamedSnapshot> {
    return createSnapshot(this.#ctx, idOrName, name);
  }

  deleteSnapshot(
    idOrName: string,
    name: string,
  ): { workspace_id: string; name: string; deleted: true } {
    return deleteSnapshot(this.#ctx, idOrName, name);
  }

  /** The workspace's network: policy, guest address, egress proxy, allowed and published ports. */
  network(idOrName: string): ReturnType<typeof networkInfo> {
    return networkInfo(this.#ctx, idOrName);
  }

  /**
   * Start a named service and wait until its readiness check passes (or it
   * is running, without one). Its ports are published first. Throws
   * `service_failed`, with the last lines of its log, when it exits before
   * it is ready or is not ready in time (its process group is killed then).
   */
  startService(
    idOrName: string,
    name: string,
    options: ServiceStartOptions,
  ): Promise<WorkspaceService> {
    return startService(this.#ctx, idOrName, name, options);
  }

  listServices(idOrName: string): Promise<{ workspace_id: string; services: WorkspaceService[] }> {
    return listServices(this.#ctx, idOrName);
  }

  serviceStatus(idOrName: string, name: string): Promise<WorkspaceService> {
    return serviceStatus(this.#ctx, idOrName, name);
  }

  /** The last `tailLines` lines (default 100) of a service's log, or all it holds. */
  serviceLogs(
    idOrName: string,
    name: string,
    options: { tailLines?: number; all?: boolean } = {},
  ): Promise<ServiceLogs> {
    return serviceLogs(this.#ctx, idOrName, name, options);
  }

  /** Stop a service (SIGTERM to its process group, SIGKILL after 5 s) and unpublish its ports. */
  stopService(idOrName: string, name: string): Promise<WorkspaceService> {
    return stopService(this.#ctx, idOrName, name);
  }
}
