/**
 * The command journal of a workspace: one JSON record a line, appended once
 * a command finishes. Outputs are kept bounded (they are also in the exec
 * result); a torn last line (a killed writer) is skipped when reading.
 */
import fs from "node:fs";
import type { OutputEncoding } from "./output.js";

export const JOURNAL_OUTPUT_LIMIT = 64 * 1024;

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
  fs.appendFileSync(file, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
}

export function readJournal(file: string): JournalEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const entries: JournalEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      entries.push(JSON.parse(line) as JournalEntry);
    } catch {
      // a line torn by a killed writer
    }
  }
  return entries.sort((a, b) => a.sequence - b.sequence);
}

/** Cut a string to the journal's limit (by characters of its encoded form). */
export function clip(text: string): { text: string; clipped: boolean } {
  return text.length > JOURNAL_OUTPUT_LIMIT
    ? { text: text.slice(0, JOURNAL_OUTPUT_LIMIT), clipped: true }
    : { text, clipped: false };
}
