/**
 * Commands in a workspace: `exec` through `sh -lc` in /workspace, each
 * recorded in the journal with a sequence number; `logs` reads the journal.
 */
import fs from "node:fs";
import { ErrorCodes, PyroError } from "../errors.js";
import type { ExecOutput } from "../protocol/client.js";
import { outputFields, prepareCommand } from "../protocol/command.js";
import { JOURNAL_FILE, WORKSPACE_ROOT, notStarted, type WorkspaceContext } from "./context.js";
import { appendJournal, clip, readJournal, type JournalEntry } from "./journal.js";
import type { WorkspaceExecResult } from "./payloads.js";
import { OUTPUT_LIMITS } from "../limits.js";
import type { Redactor } from "../secrets/redaction.js";
import { redactorFor, secretEnvFor, type SecretEnvSpec } from "./secrets.js";

export interface ExecOptions {
  timeoutSeconds?: number;
  /** Streamed output, secrets already redacted. */
  onStdout?: (bytes: Buffer) => void;
  onStderr?: (bytes: Buffer) => void;
  /** Secrets the command gets as environment variables ("NAME" or "NAME=VAR", or VAR → NAME). */
  secretEnv?: SecretEnvSpec;
}

/** A stream callback that redacts as it goes; `end` hands on what it held back. */
function redacting(redactor: Redactor, sink: ((bytes: Buffer) => void) | undefined) {
  if (!sink || !redactor.active) return { push: sink, end: (_options: { cut: boolean }) => {} };
  const stream = redactor.stream();
  return {
    push: (bytes: Buffer) => {
      const out = stream.push(bytes);
      if (out.length > 0) sink(out);
    },
    end: (options: { cut: boolean }) => {
      const out = stream.end(options);
      if (out.length > 0) sink(out);
    },
  };
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
  const secretEnv = secretEnvFor(record, options.secretEnv);
  const redactor = redactorFor(ctx, record);
  const stdout = redacting(redactor, options.onStdout);
  const stderr = redacting(redactor, options.onStderr);
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
        ...(secretEnv ? { secret_env: secretEnv } : {}),
      },
      { onStdout: stdout.push, onStderr: stderr.push },
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
  stdout.end({ cut: output.stdout_truncated });
  stderr.end({ cut: output.stderr_truncated });
  // Redacted before anything keeps it: the journal is on disk.
  const result: WorkspaceExecResult = redactor.redactDeep({
    workspace_id: record.id,
    sequence,
    command: commandText,
    cwd: WORKSPACE_ROOT,
    exit_code: output.exit_code,
    ...outputFields({
      ...output,
      stdout: redactor.redactBytes(output.stdout, { cut: output.stdout_truncated }),
      stderr: redactor.redactBytes(output.stderr, { cut: output.stderr_truncated }),
    }),
    duration_ms: output.duration_ms,
  });
  const journalOut = clip(result.stdout);
  const journalErr = clip(result.stderr);
  const entry: JournalEntry = {
    sequence,
    command: result.command,
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
  options: { sequence?: number } = {},
): { workspace_id: string; entries: JournalEntry[] } {
  const record = ctx.store.resolve(idOrName);
  const entries = readJournal(ctx.store.file(record.id, JOURNAL_FILE));
  if (options.sequence === undefined) return { workspace_id: record.id, entries };
  const entry = entries.find((e) => e.sequence === options.sequence);
  if (!entry) {
    throw new PyroError(
      ErrorCodes.UsageError,
      `${record.id} has no command #${options.sequence} in its journal (since its last reset)`,
      {
        hint: entries.length
          ? `its journal holds #${entries[0]!.sequence} to #${entries.at(-1)!.sequence}`
          : "its journal is empty",
      },
    );
  }
  return { workspace_id: record.id, entries: [entry] };
}
