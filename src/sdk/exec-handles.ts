/**
 * Commands that outlive a call. A chat host times a tool call out after
 * ~60 s, so MCP's exec waits a bounded time; a command still running then
 * keeps running here, in this process, and the caller gets its id. A later
 * wait with that id returns the result. Output is collected as it streams,
 * so nothing is lost when a wait returns early; finished results are kept for
 * an hour (and are in the workspace journal anyway). A wait can report
 * progress while it lasts (the latest output line), so a host that resets
 * its timeout on progress keeps waiting.
 */
import { randomBytes } from "node:crypto";
import { ErrorCodes, PyroError } from "../errors.js";
import { OUTPUT_LIMITS } from "../limits.js";
import type { WorkspaceExecResult } from "../workspaces/payloads.js";

const KEEP_FINISHED_MS = 60 * 60 * 1000;
const MAX_FINISHED = 200;

/** How often a wait reports progress: the first report, new output at most this often, and silence. */
export const EXEC_PROGRESS = {
  firstAfterMs: 1000,
  minIntervalMs: 1000,
  heartbeatMs: 5000,
  tickMs: 250,
  /** Characters of the latest line a report carries. */
  lineChars: 200,
} as const;

/** What a wait reports while the command runs. */
export interface ExecProgress {
  command_id: string;
  /** Since the command started (not since this wait began). */
  elapsed_ms: number;
  /** Output so far, both streams, secrets redacted. */
  output_bytes: number;
  /** The latest non-blank output line (either stream), redacted, without escape sequences, clipped; null before any. */
  latest_line: string | null;
}

export interface ExecWaitOptions {
  /**
   * Called while the wait lasts: first after a second, then when new output
   * came (at most once a second), and every 5 s of silence.
   */
  onProgress?: (progress: ExecProgress) => void;
  /** Ends the wait early (the command keeps running; wait again with its id). */
  signal?: AbortSignal;
  /** Only a command of this workspace (its id): another one's is "not found". */
  workspaceId?: string;
}

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
  startedMs: number;
  outputBytes: number;
  /** Bumped on every chunk of output: a wait reports when it changed. */
  outputSeq: number;
  /** The stream that printed last; its tail gives the latest line when a report is due. */
  lastStream: "stdout" | "stderr" | null;
  latestLine: string | null;
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
      startedMs: Date.now(),
      outputBytes: 0,
      outputSeq: 0,
      lastStream: null,
      latestLine: null,
      done: Promise.resolve(),
    };
    const tail = (current: string, bytes: Buffer) => {
      job.outputBytes += bytes.length;
      job.outputSeq += 1;
      return (current + bytes.toString("utf8")).slice(-OUTPUT_LIMITS.liveTailBytes);
    };
    job.done = run(
      (bytes) => {
        job.stdoutTail = tail(job.stdoutTail, bytes);
        job.lastStream = "stdout";
      },
      (bytes) => {
        job.stderrTail = tail(job.stderrTail, bytes);
        job.lastStream = "stderr";
      },
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
  async wait(commandId: string, ms: number, options: ExecWaitOptions = {}): Promise<ExecStatus> {
    const found = this.jobs.get(commandId);
    const job =
      options.workspaceId === undefined || found?.workspace_id === options.workspaceId
        ? found
        : undefined;
    if (!job) {
      const running = this.running()
        .filter((j) => options.workspaceId === undefined || j.workspace_id === options.workspaceId)
        .map((j) => ({ command_id: j.id, command: j.command }));
      throw new PyroError(ErrorCodes.CommandNotFound, `no command ${commandId} in this process`, {
        fix: { kind: "find_command", running },
      });
    }
    if (job.finished_at === undefined) {
      let timer: NodeJS.Timeout | undefined;
      let onAbort = () => {};
      const ended = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
        onAbort = resolve;
        if (options.signal?.aborted) resolve();
        options.signal?.addEventListener("abort", onAbort, { once: true });
      });
      const stopReports = options.onProgress ? reportProgress(job, options.onProgress) : () => {};
      await Promise.race([job.done, ended]).finally(() => {
        clearTimeout(timer);
        stopReports();
        options.signal?.removeEventListener("abort", onAbort);
      });
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

/** Report a running job's progress until the returned function is called (throttled: see EXEC_PROGRESS). */
function reportProgress(job: Job, onProgress: (progress: ExecProgress) => void): () => void {
  const began = Date.now();
  let sentAt: number | undefined;
  let sentSeq = -1;
  const timer = setInterval(() => {
    if (job.finished_at !== undefined) return;
    const now = Date.now();
    const due =
      sentAt === undefined
        ? now - began >= EXEC_PROGRESS.firstAfterMs
        : (job.outputSeq !== sentSeq && now - sentAt >= EXEC_PROGRESS.minIntervalMs) ||
          now - sentAt >= EXEC_PROGRESS.heartbeatMs;
    if (!due) return;
    if (job.outputSeq !== sentSeq && job.lastStream !== null) {
      const tail = job.lastStream === "stdout" ? job.stdoutTail : job.stderrTail;
      job.latestLine = latestLine(tail) ?? job.latestLine;
    }
    sentAt = now;
    sentSeq = job.outputSeq;
    try {
      onProgress({
        command_id: job.id,
        elapsed_ms: now - job.startedMs,
        output_bytes: job.outputBytes,
        latest_line: job.latestLine,
      });
    } catch {
      // A reporter that fails (a closed connection) must not end the wait.
    }
  }, EXEC_PROGRESS.tickMs);
  return () => clearInterval(timer);
}

/** The last non-blank line of some output, as a person would read it: no escape sequences, clipped. */
export function latestLine(text: string): string | null {
  const lines = text.split(/\r\n|\n|\r/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]! // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]/g, "")
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "")
      .trim();
    if (line) {
      return line.length > EXEC_PROGRESS.lineChars
        ? `${line.slice(0, EXEC_PROGRESS.lineChars - 1)}…`
        : line;
    }
  }
  return null;
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
