/**
 * `pyro.workspaces`: the public face of persistent workspaces. Every method
 * is one operation returning its snake_case payload; the store, supervisors
 * and agent connections stay behind it (a private field, not reachable from
 * outside). Defaults come from `DEFAULTS`; a project source, when the caller
 * has one, seeds creates that name no seed. Whatever an operation returns or
 * throws has the workspace's secrets redacted, here, once for every face.
 */
import { DEFAULTS } from "../limits.js";
import type { DiffResult } from "../workspaces/diff.js";
import type { WorkspaceContext } from "../workspaces/context.js";
import {
  exportDisk,
  listDisk,
  readDisk,
  type DiskExport,
  type DiskListing,
  type DiskRead,
} from "../workspaces/disk.js";
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
  type RecordKind,
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
import { redactError, redactorFor, type SecretEnvSpec } from "../workspaces/secrets.js";
import {
  closeShell,
  listShells,
  openShell,
  readShell,
  signalShell,
  writeShell,
  type ShellOpenOptions,
  type ShellRead,
  type ShellReadOptions,
  type WorkspaceShell,
} from "../workspaces/shells.js";
import { createSnapshot, deleteSnapshot, listSnapshots, reset } from "../workspaces/snapshots.js";
import type { WorkspaceSummary } from "../workspaces/summary.js";
import { exportPath, syncPush } from "../workspaces/transfer.js";
import { ExecHandles, type ExecStatus, type ExecWaitOptions } from "./exec-handles.js";
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

export type {
  ExecOptions,
  ExecWaitOptions,
  SecretEnvSpec,
  ServiceStartOptions,
  ServiceLogs,
  ShellOpenOptions,
  ShellRead,
  ShellReadOptions,
  WorkspaceShell,
};

export interface ExecStartOptions {
  timeoutSeconds?: number;
  secretEnv?: SecretEnvSpec;
}

export class Workspaces {
  readonly #ctx: WorkspaceContext;
  readonly #handles = new ExecHandles();

  constructor(ctx: WorkspaceContext) {
    this.#ctx = ctx;
  }

  /** Run an operation on one workspace: its result and errors with its secrets redacted. */
  async #guard<T>(idOrName: string, run: () => Promise<T>): Promise<T> {
    const redactor = redactorFor(this.#ctx, idOrName);
    try {
      return redactor.redactDeep(await run());
    } catch (error) {
      throw redactError(redactor, error);
    }
  }

  #guardSync<T>(idOrName: string, run: () => T): T {
    const redactor = redactorFor(this.#ctx, idOrName);
    try {
      return redactor.redactDeep(run());
    } catch (error) {
      throw redactError(redactor, error);
    }
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

  /** Workspaces (the latest used first); `{ kind: "vm" }` lists the one-shot VMs of MCP vm_create instead. */
  list(options: { kind?: RecordKind } = {}): Workspace[] {
    return list(this.#ctx, options.kind).map((w) =>
      redactorFor(this.#ctx, w.id, { lenient: true }).redactDeep(w),
    );
  }

  status(idOrName: string): Workspace {
    return this.#guardSync(idOrName, () => status(this.#ctx, idOrName));
  }

  update(
    idOrName: string,
    changes: { name?: string; labels?: Record<string, string>; clearLabels?: string[] },
  ): Promise<Workspace> {
    return this.#guard(idOrName, () => update(this.#ctx, idOrName, changes));
  }

  stop(idOrName: string): Promise<Workspace> {
    return this.#guard(idOrName, () => stop(this.#ctx, idOrName));
  }

  start(idOrName: string): Promise<Workspace> {
    return this.#guard(idOrName, () => start(this.#ctx, idOrName));
  }

  delete(idOrName: string): Promise<{ workspace_id: string; name: string | null; deleted: true }> {
    // Nothing from the guest in the result; a damaged secret store must not stop a delete.
    return deleteWorkspace(this.#ctx, idOrName);
  }

  /** A new workspace starting as a copy of this one's disk and (when running) memory. */
  fork(idOrName: string, options: { name?: string } = {}): ReturnType<typeof fork> {
    return this.#guard(idOrName, () => fork(this.#ctx, idOrName, options));
  }

  /** A fresh machine with /workspace at the baseline or a named snapshot; the journal starts over. */
  reset(idOrName: string, options: { snapshot?: string } = {}): ReturnType<typeof reset> {
    return this.#guard(idOrName, () => reset(this.#ctx, idOrName, options));
  }

  /** Delete workspaces whose TTL has passed (of one kind, if given); returns their ids. */
  reapExpired(options: { kind?: RecordKind } = {}): string[] {
    return reapExpired(this.#ctx, options.kind);
  }

  /** Run a command in /workspace (`sh -lc` for a string), journaled; resolves when it ends. */
  exec(
    idOrName: string,
    command: string | string[],
    options: ExecOptions = {},
  ): Promise<WorkspaceExecResult> {
    return this.#guard(idOrName, () => exec(this.#ctx, idOrName, command, options));
  }

  /**
   * Start a command and return at once with its `command_id`; `execWait`
   * waits for it a bounded time. Output is collected meanwhile, so nothing is
   * lost between waits; finished results stay for an hour (and in the journal).
   */
  execStart(idOrName: string, command: string, options: ExecStartOptions = {}): ExecStatus {
    const ws = this.#ctx.store.resolve(idOrName); // an unknown workspace fails now, not later
    const timeoutSeconds = options.timeoutSeconds ?? DEFAULTS.execTimeoutSeconds;
    const shown = redactorFor(this.#ctx, ws).redact(command);
    return this.#handles.start(ws.id, shown, (onStdout, onStderr) =>
      this.#guard(ws.id, () =>
        exec(this.#ctx, ws.id, command, {
          timeoutSeconds,
          onStdout,
          onStderr,
          secretEnv: options.secretEnv,
        }),
      ),
    );
  }

  /**
   * Wait up to `waitSeconds` for a started command; its result, or its
   * status while it runs. `onProgress` hears the latest output line
   * (redacted) while the wait lasts. With `workspace`, only a command of
   * that workspace is found.
   */
  execWait(
    commandId: string,
    waitSeconds: number,
    options: ExecWaitOptions & { workspace?: string } = {},
  ): Promise<ExecStatus> {
    const { workspace, ...rest } = options;
    const workspaceId = workspace === undefined ? undefined : this.#ctx.store.resolve(workspace).id;
    return this.#handles.wait(commandId, waitSeconds * 1000, {
      ...rest,
      ...(workspaceId ? { workspaceId } : {}),
    });
  }

  /** The command journal since the last reset; with `sequence`, that one entry. */
  logs(
    idOrName: string,
    options: { sequence?: number } = {},
  ): { workspace_id: string; entries: JournalEntry[] } {
    return this.#guardSync(idOrName, () => logs(this.#ctx, idOrName, options));
  }

  listFiles(
    idOrName: string,
    guestPath = ".",
    options: { recursive?: boolean } = {},
  ): ReturnType<typeof listFiles> {
    return this.#guard(idOrName, () => listFiles(this.#ctx, idOrName, guestPath, options));
  }

  readFile(
    idOrName: string,
    guestPath: string,
    options: { maxBytes?: number } = {},
  ): ReturnType<typeof readFile> {
    return this.#guard(idOrName, () => readFile(this.#ctx, idOrName, guestPath, options));
  }

  writeFile(
    idOrName: string,
    guestPath: string,
    content: string | Buffer,
  ): ReturnType<typeof writeFile> {
    return this.#guard(idOrName, () => writeFile(this.#ctx, idOrName, guestPath, content));
  }

  applyPatch(idOrName: string, patchText: string): ReturnType<typeof applyPatch> {
    return this.#guard(idOrName, () => applyPatch(this.#ctx, idOrName, patchText));
  }

  diff(idOrName: string): Promise<{ workspace_id: string } & DiffResult> {
    return this.#guard(idOrName, () => diff(this.#ctx, idOrName));
  }

  summary(idOrName: string): Promise<WorkspaceSummary> {
    return this.#guard(idOrName, () => summary(this.#ctx, idOrName));
  }

  export(idOrName: string, guestPath: string, output: string): ReturnType<typeof exportPath> {
    return this.#guard(idOrName, () => exportPath(this.#ctx, idOrName, guestPath, output));
  }

  syncPush(idOrName: string, source: string, dest?: string): ReturnType<typeof syncPush> {
    return this.#guard(idOrName, () => syncPush(this.#ctx, idOrName, source, dest));
  }

  /**
   * A stopped workspace's disk, read offline without booting it: a
   * directory's entries. Paths are guest paths (relative ones are under
   * /workspace); runtime-only paths (RUNTIME_ONLY_PATHS) are left out.
   */
  listDisk(
    idOrName: string,
    guestPath?: string,
    options: { recursive?: boolean } = {},
  ): Promise<DiskListing> {
    return this.#guard(idOrName, () => listDisk(this.#ctx, idOrName, guestPath, options));
  }

  /** A file of a stopped workspace's disk, read offline; at most `maxBytes` (default 65536). */
  readDisk(
    idOrName: string,
    guestPath: string,
    options: { maxBytes?: number } = {},
  ): Promise<DiskRead> {
    return this.#guard(idOrName, () => readDisk(this.#ctx, idOrName, guestPath, options));
  }

  /** A stopped workspace's whole disk as a raw ext4 image at `output` (which must not exist). */
  exportDisk(idOrName: string, output: string): Promise<DiskExport> {
    return this.#guard(idOrName, () => exportDisk(this.#ctx, idOrName, output));
  }

  listSnapshots(idOrName: string): { workspace_id: string; snapshots: NamedSnapshot[] } {
    return this.#guardSync(idOrName, () => listSnapshots(this.#ctx, idOrName));
  }

  createSnapshot(
    idOrName: string,
    name: string,
  ): Promise<{ workspace_id: string } & NamedSnapshot> {
    return this.#guard(idOrName, () => createSnapshot(this.#ctx, idOrName, name));
  }

  deleteSnapshot(
    idOrName: string,
    name: string,
  ): { workspace_id: string; name: string; deleted: true } {
    return this.#guardSync(idOrName, () => deleteSnapshot(this.#ctx, idOrName, name));
  }

  /** The workspace's network: policy, guest address, egress proxy, allowed and published ports. */
  network(idOrName: string): ReturnType<typeof networkInfo> {
    return this.#guardSync(idOrName, () => networkInfo(this.#ctx, idOrName));
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
    return this.#guard(idOrName, () => startService(this.#ctx, idOrName, name, options));
  }

  listServices(idOrName: string): Promise<{ workspace_id: string; services: WorkspaceService[] }> {
    return this.#guard(idOrName, () => listServices(this.#ctx, idOrName));
  }

  serviceStatus(idOrName: string, name: string): Promise<WorkspaceService> {
    return this.#guard(idOrName, () => serviceStatus(this.#ctx, idOrName, name));
  }

  /** The last `tailLines` lines (default 100) of a service's log, or all it holds. */
  serviceLogs(
    idOrName: string,
    name: string,
    options: { tailLines?: number; all?: boolean } = {},
  ): Promise<ServiceLogs> {
    return this.#guard(idOrName, () => serviceLogs(this.#ctx, idOrName, name, options));
  }

  /** Stop a service (SIGTERM to its process group, SIGKILL after 5 s) and unpublish its ports. */
  stopService(idOrName: string, name: string): Promise<WorkspaceService> {
    return this.#guard(idOrName, () => stopService(this.#ctx, idOrName, name));
  }

  /** Open an interactive login shell on a PTY (120×30 unless told), in /workspace unless told. */
  openShell(idOrName: string, options: ShellOpenOptions = {}): Promise<WorkspaceShell> {
    return this.#guard(idOrName, () => openShell(this.#ctx, idOrName, options));
  }

  /**
   * Read a shell's output from a cursor (0, or the previous read's
   * `next_cursor`): raw, or `plain` as a person would see it. With
   * `waitForIdleMs`, first wait until the shell has been quiet that long.
   */
  readShell(idOrName: string, shellId: string, options: ShellReadOptions = {}): Promise<ShellRead> {
    return this.#guard(idOrName, () => readShell(this.#ctx, idOrName, shellId, options));
  }

  /** Type into a shell; Enter (a newline) is added unless `appendNewline` is false. */
  writeShell(
    idOrName: string,
    shellId: string,
    input: string,
    options: { appendNewline?: boolean } = {},
  ): ReturnType<typeof writeShell> {
    return this.#guard(idOrName, () => writeShell(this.#ctx, idOrName, shellId, input, options));
  }

  /** Signal what runs in the shell's foreground (INT, TERM, HUP or KILL; INT by default). */
  signalShell(idOrName: string, shellId: string, signal = "INT"): ReturnType<typeof signalShell> {
    return this.#guard(idOrName, () => signalShell(this.#ctx, idOrName, shellId, signal));
  }

  /** Hang a shell up; what it ran gets SIGHUP (and SIGKILL after 2 s). */
  closeShell(idOrName: string, shellId: string): Promise<WorkspaceShell> {
    return this.#guard(idOrName, () => closeShell(this.#ctx, idOrName, shellId));
  }

  listShells(idOrName: string): { workspace_id: string; shells: WorkspaceShell[] } {
    return this.#guardSync(idOrName, () => listShells(this.#ctx, idOrName));
  }
}
