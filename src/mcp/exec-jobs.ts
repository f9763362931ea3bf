/**
 * Commands that outlive a tool call. `workspace_exec` waits a bounded time
 * (well under hosts' 60 s tool timeout); a command still running then keeps
 * running here, in the server process, and the call returns its id. A later
 * call with that id waits again and returns the result. Output is collected
 * as it streams, so nothing is lost when a call returns early; finished
 * results are kept for a while (and are in the workspace journal anyway).
 */
import { randomBytes } from "node:crypto";
import type { WorkspaceExecResult } from "../workspaces/service.js";

/** Output shown while a command runs: the last bytes of each stream. */
const LIVE_TAIL_BYTES = 8 * 1024;
const KEEP_FINISHED_MS = 60 * 60 * 1000;
const MAX_FINISHED = 200;

export interface ExecJob {
  id: string;
  workspace_id: string;
  command: string;
  started_at: string;
  finished_at: number | undefined;
  result: WorkspaceExecResult | undefined;
  error: unknown;
  stdoutTail: string;
  stderrTail: string;
  done: Promise<void>;
}

export type ExecRunner = (
  onStdout: (bytes: Buffer) => void,
  onStderr: (bytes: Buffer) => void,
) => Promise<WorkspaceExecResult>;

export class ExecJobs {
  private readonly jobs = new Map<string, ExecJob>();

  start(workspaceId: string, command: string, run: ExecRunner): ExecJob {
    this.forgetOld();
    const job: ExecJob = {
      id: `cmd_${randomBytes(6).toString("hex")}`,
      workspace_id: workspaceId,
      command,
      started_at: new Date().toISOString(),
      finished_at: undefined,
      result: undefined,
      error: undefined,
      stdoutTail: "",
      stderrTail: "",
      done: Promise.resolve(),
    };
    const tail = (current: string, bytes: Buffer) =>
      (current + bytes.toString("utf8")).slice(-LIVE_TAIL_BYTES);
    job.done = run(
      (bytes) => (job.stdoutTail = tail(job.stdoutTail, bytes)),
      (bytes) => (job.stderrTail = tail(job.stderrTail, bytes)),
    ).then(
      (result) => {
        job.result = result;
        job.finished_at = Date.now();
      },
      (error: unknown) => {
        job.error = error;
        job.finished_at = Date.now();
      },
    );
    this.jobs.set(job.id, job);
    return job;
  }

  get(id: string): ExecJob | undefined {
    return this.jobs.get(id);
  }

  /** Resolves true once the job is finished, false if `ms` pass first. */
  async wait(job: ExecJob, ms: number): Promise<boolean> {
    if (job.finished_at !== undefined) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    try {
      return await Promise.race([job.done.then(() => true), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  running(): ExecJob[] {
    return [...this.jobs.values()].filter((job) => job.finished_at === undefined);
  }

  private forgetOld(): void {
    const finished = [...this.jobs.values()]
      .filter((job) => job.finished_at !== undefined)
      .sort((a, b) => a.finished_at! - b.finished_at!);
    const now = Date.now();
    finished.forEach((job, index) => {
      if (now - job.finished_at! > KEEP_FINISHED_MS || finished.length - index > MAX_FINISHED)
        this.jobs.delete(job.id);
    });
  }
}
