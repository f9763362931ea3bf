/**
 * The command journal of a workspace: one JSON record a line, appended once
 * a command finishes. Outputs are kept bounded (they are also in the exec
 * result); a torn last line (a killed writer) is skipped when reading.
 */
import { appendJsonLine, readJsonLines } from "../util/jsonl.js";
import type { OutputEncoding } from "../protocol/command.js";
import { OUTPUT_LIMITS } from "../limits.js";

export interface JournalEntry {
  sequence: number;
  command: string;
  cwd: string;
  started_at: string;
  duration_ms: number;
  exit_code: number;
  timed_out: boolean;
  stdout: string;
  stderr: string;
  stdout_encoding: OutputEncoding;
  stderr_encoding: OutputEncoding;
  /** True when output was cut (in the guest, or to fit the journal). */
  truncated: boolean;
}

export function appendJournal(file: string, entry: JournalEntry): void {
  appendJsonLine(file, entry);
}

export function readJournal(file: string): JournalEntry[] {
  return readJsonLines<JournalEntry>(file).sort((a, b) => a.sequence - b.sequence);
}

/** Cut a string to the journal's limit (by characters of its encoded form). */
export function clip(text: string): { text: string; clipped: boolean } {
  return text.length > OUTPUT_LIMITS.journalChars
    ? { text: text.slice(0, OUTPUT_LIMITS.journalChars), clipped: true }
    : { text, clipped: false };
}
