import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OUTPUT_LIMITS } from "../limits.js";
import { appendJournal, clip, readJournal, type JournalEntry } from "./journal.js";

let tmp: string;
let file: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-journal-test-"));
  file = path.join(tmp, "journal.jsonl");
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function entry(sequence: number, overrides: Partial<JournalEntry> = {}): JournalEntry {
  return {
    sequence,
    command: `echo ${sequence}`,
    cwd: "/workspace",
    started_at: new Date(Date.UTC(2024, 0, 1, 0, 0, sequence)).toISOString(),
    duration_ms: 10 * sequence,
    exit_code: 0,
    timed_out: false,
    stdout: `${sequence}\n`,
    stderr: "",
    stdout_encoding: "utf-8",
    stderr_encoding: "utf-8",
    truncated: false,
    ...overrides,
  };
}

describe("journal", () => {
  it("reads a missing journal as empty", () => {
    expect(readJournal(file)).toEqual([]);
  });

  it("round-trips entries, sorted by sequence", () => {
    const entries = [
      entry(3),
      entry(1, { exit_code: 2, stderr: "oops\n" }),
      entry(2, {
        stdout: Buffer.from([0xff, 0]).toString("base64"),
        stdout_encoding: "base64",
        timed_out: true,
        truncated: true,
        command: "printf 'a\\nb'; echo \"quoted\" \u2713",
      }),
    ];
    for (const e of entries) appendJournal(file, e);
    const read = readJournal(file);
    expect(read.map((e) => e.sequence)).toEqual([1, 2, 3]);
    expect(read).toEqual([entries[1], entries[2], entries[0]]);
    // one JSON record a line, owner-only
    expect(fs.readFileSync(file, "utf8").split("\n")).toHaveLength(4);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it("skips a torn last line", () => {
    appendJournal(file, entry(1));
    appendJournal(file, entry(2));
    const torn = JSON.stringify(entry(3)).slice(0, 40);
    fs.appendFileSync(file, torn);
    expect(readJournal(file).map((e) => e.sequence)).toEqual([1, 2]);
    // a writer that comes later still appends complete records after the torn one
    fs.appendFileSync(file, "\n");
    appendJournal(file, entry(4));
    expect(readJournal(file).map((e) => e.sequence)).toEqual([1, 2, 4]);
  });

  it("ignores blank lines", () => {
    appendJournal(file, entry(1));
    fs.appendFileSync(file, "\n   \n");
    appendJournal(file, entry(2));
    expect(readJournal(file).map((e) => e.sequence)).toEqual([1, 2]);
  });
});

describe("clip", () => {
  it("keeps text up to the limit", () => {
    expect(clip("")).toEqual({ text: "", clipped: false });
    expect(clip("short")).toEqual({ text: "short", clipped: false });
    const exact = "x".repeat(OUTPUT_LIMITS.journalChars);
    expect(clip(exact)).toEqual({ text: exact, clipped: false });
  });

  it("cuts text above the limit to the limit", () => {
    const long = `${"a".repeat(OUTPUT_LIMITS.journalChars)}bcd`;
    const result = clip(long);
    expect(result.clipped).toBe(true);
    expect(result.text).toHaveLength(OUTPUT_LIMITS.journalChars);
    expect(result.text).toBe("a".repeat(OUTPUT_LIMITS.journalChars));
  });

  it("has a 64 KiB limit", () => {
    expect(OUTPUT_LIMITS.journalChars).toBe(64 * 1024);
  });
});
