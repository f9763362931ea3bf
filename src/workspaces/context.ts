/**
 * What every workspace operation works with: the store of records, the
 * launch context for starting VMs, and the way to reach a started
 * workspace's agent (through its supervisor's control socket).
 */
import type { PyroPaths } from "../config/paths.js";
import type { EnvironmentCache } from "../environments/cache.js";
import { ErrorCodes, PyroError } from "../errors.js";
import { AgentClient } from "../protocol/client.js";
import type { LaunchContext } from "../boot/launch.js";
import { WorkspaceStore, type WorkspaceRecord } from "../records/store.js";
import type { ProgressFn } from "../util/progress.js";
import { appendEvent, type NewReviewEvent } from "./events.js";
import { readJournal } from "./journal.js";
import { toWorkspace, type Workspace } from "./payloads.js";
import { redactorFor } from "./secrets.js";

export const WORKSPACE_ROOT = "/workspace";
/** The named snapshot every workspace has: /workspace as create left it. */
export const BASELINE = "baseline";
/** Files of a workspace's directory in the store. */
export const JOURNAL_FILE = "journal.jsonl";
export const EVENTS_FILE = "events.jsonl";
export const BASELINE_FILE = "baseline.tar";
export const DISK_FILE = "disk.qcow2";

export class WorkspaceContext {
  readonly store: WorkspaceStore;

  constructor(
    readonly paths: PyroPaths,
    readonly cache: EnvironmentCache,
    readonly progress: ProgressFn,
    readonly maxRunning: number,
  ) {
    this.store = new WorkspaceStore(paths);
  }

  get launch(): LaunchContext {
    return {
      paths: this.paths,
      cache: this.cache,
      progress: this.progress,
      maxRunning: this.maxRunning,
    };
  }

  payload(record: WorkspaceRecord): Workspace {
    return toWorkspace(record, readJournal(this.store.file(record.id, JOURNAL_FILE)).length);
  }

  /** Connect to a started workspace's supervisor and run `fn` with the agent. */
  async withAgent<T>(
    target: string | WorkspaceRecord,
    fn: (agent: AgentClient) => Promise<T>,
  ): Promise<T> {
    const agent = await this.connect(target);
    try {
      return await fn(agent);
    } finally {
      agent.close();
    }
  }

  /**
   * A connection to a started workspace's supervisor; the caller closes it.
   * Given a record just read, the store is not read again.
   */
  async connect(target: string | WorkspaceRecord): Promise<AgentClient> {
    const id = typeof target === "string" ? target : target.id;
    const record = typeof target === "string" ? this.store.read(id) : target;
    if (!record) throw new PyroError(ErrorCodes.WorkspaceNotFound, `workspace ${id} was deleted`);
    if (
      record.state !== "started" &&
      !(record.state === "starting" && record.busy_pid === process.pid)
    ) {
      throw notStarted(record);
    }
    try {
      return await AgentClient.connectUnix(this.store.file(id, "control.sock"));
    } catch {
      throw notStarted(this.store.read(id) ?? record);
    }
  }

  async touch(id: string): Promise<void> {
    await this.store
      .update(id, (r) => {
        r.last_activity_at = new Date().toISOString();
      })
      .catch(() => {});
  }

  /** Record a review event (secrets redacted: the events file is kept on disk). */
  recordEvent(id: string, event: NewReviewEvent): void {
    try {
      appendEvent(this.store.file(id, EVENTS_FILE), redactorFor(this, id).redactDeep(event));
    } catch {
      // deleted meanwhile: nothing to review
    }
  }
}

export function notStarted(record: WorkspaceRecord): PyroError {
  const label = record.name ?? record.id;
  if (record.state === "failed") {
    return new PyroError(
      ErrorCodes.WorkspaceState,
      `workspace ${label} has failed: ${record.failure_reason ?? "unknown reason"}`,
      { fix: { kind: "start_workspace", workspace: label } },
    );
  }
  return new PyroError(ErrorCodes.WorkspaceState, `workspace ${label} is ${record.state}`, {
    fix: { kind: "start_workspace", workspace: label },
  });
}
