/**
 * Commands that outlive a call. A chat host times a tool call out after
 * ~60 s, so MCP's exec waits a bounded time; a command still running then
 * keeps running here, in this process, and the caller gets its id. A later
 * wait with that id returns the result. Output is collected as it streams,
 * so nothing is lost when a wait returns early; finished results are kept for
 * an hour (and are in the workspace journal anyway).
 */
import { randomBytes } from "node:crypto";
import { ErrorCodes, PyroError } from "../errors.js";
import { OUTPUT_LIMITS } from "../limits.js";
import type { WorkspaceExecResult } from "../workspaces/payloads.js";

const KEEP_FINISHED_MS = 60 * 60 * 1000;
const MAX_FINISHED = 200;

/** A started command: still running (with the tail of its output so far), or its result. */
export type ExecStatus =
  | {
      status: "running";
      command_id: string;
      workspace_id: string;
      command: string;
      started_at: string;
      stdout_tail: string;
      stderr_tail: string;
    }
  | ({ status: "completed"; command_id: string } & WorkspaceExecResult);

interface Job {
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

export class ExecHandles {
  private readonly jobs = new Map<string, Job>();

  start(workspaceId: string, command: string, run: ExecRunner): ExecStatus {
    this.forgetOld();
    const job: Job = {
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
      (current + bytes.toString("utf8")).slice(-OUTPUT_LIMITS.liveTailBytes);
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
    return statusOf(job);
  }

  /** Wait up to `ms` for the command; its result once finished (or its error, thrown). */
  async wait(commandId: string, ms: number): Promise<ExecStatus> {
    const job = this.jobs.get(commandId);
    if (!job) {
      const running = this.running().map((j) => ({ command_id: j.id, command: j.command }));
      throw new PyroError(ErrorCodes.CommandNotFound, `no command ${commandId} in this process`, {
        fix: { kind: "find_command", running },
      });
    }
    if (job.finished_at === undefined) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
      });
      await Promise.race([job.done, timedOut]).finally(() => clearTimeout(timer));
    }
    return statusOf(job);
  }

  private running(): Job[] {
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

function statusOf(job: Job): ExecStatus {
  if (job.error !== undefined) throw job.error;
  if (job.result) return { status: "completed", command_id: job.id, ...job.result };
  return {
    status: "running",
    command_id: job.id,
    workspace_id: job.workspace_id,
    command: job.command,
    started_at: job.started_at,
    stdout_tail: job.stdoutTail,
    stderr_tail: job.stderrTail,
  };
}
