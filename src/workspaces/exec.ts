/**
 * Commands in a workspace: `exec` through `sh -lc` in /workspace, each
 * recorded in the journal with a sequence number; `logs` reads the journal.
 */
import fs from "node:fs";
import type { ExecOutput } from "../protocol/client.js";
import { outputFields, prepareCommand } from "../protocol/command.js";
import { JOURNAL_FILE, WORKSPACE_ROOT, notStarted, type WorkspaceContext } from "./context.js";
import { appendJournal, clip, readJournal, type JournalEntry } from "./journal.js";
import type { WorkspaceExecResult } from "./payloads.js";
import { OUTPUT_LIMITS } from "../limits.js";

export interface ExecOptions {
  timeoutSeconds?: number;
  onStdout?: (bytes: Buffer) => void;
  onStderr?: (bytes: Buffer) => void;
}

export async function exec(
  ctx: WorkspaceContext,
  idOrName: string,
  command: string | string[],
  options: ExecOptions = {},
): Promise<WorkspaceExecResult> {
  const record = ctx.store.resolve(idOrName);
  const { argv, timeoutMs } = prepareCommand(command, options.timeoutSeconds);
  const commandText = argv[2]!;
  if (record.state !== "started") throw notStarted(record);
  const startedAt = new Date().toISOString();
  const agent = await ctx.connect(record);
  let sequence: number;
  let output: ExecOutput;
  try {
    const running = agent.exec(
      {
        argv,
        cwd: WORKSPACE_ROOT,
        timeout_ms: timeoutMs,
        max_output_bytes: OUTPUT_LIMITS.streamBytes,
      },
      { onStdout: options.onStdout, onStderr: options.onStderr },
    );
    running.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
    // The request is on its way: take the sequence number while the guest
    // runs the command (bookkeeping, written without an fsync: see
    // writeFileAtomic). If this fails, closing the connection cancels the command.
    const updated = await ctx.store.update(
      record.id,
      (r) => {
        r.exec_sequence = (r.exec_sequence ?? 0) + 1;
        r.last_activity_at = new Date().toISOString();
      },
      { durable: false },
    );
    sequence = updated.exec_sequence ?? 1;
    output = await running;
  } finally {
    agent.close();
  }
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
  if (fs.existsSync(ctx.store.dir(record.id)))
    appendJournal(ctx.store.file(record.id, JOURNAL_FILE), entry);
  return result;
}

export function logs(
  ctx: WorkspaceContext,
  idOrName: string,
): { workspace_id: string; entries: JournalEntry[] } {
  const record = ctx.store.resolve(idOrName);
  return {
    workspace_id: record.id,
    entries: readJournal(ctx.store.file(record.id, JOURNAL_FILE)),
  };
}
