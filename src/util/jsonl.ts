/**
 * Append-only JSON Lines files (the command journal, review events): one
 * record a line, owner-only. Reading skips a torn last line (a killed
 * writer) and any line that is not JSON; a missing file reads as empty.
 */
import fs from "node:fs";

export function appendJsonLine(file: string, record: unknown): void {
  fs.appendFileSync(file, `${JSON.stringify(record)}\n`, { mode: 0o600 });
}

export function readJsonLines<T>(file: string): T[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const records: T[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      records.push(JSON.parse(line) as T);
    } catch {
      // a line torn by a killed writer
    }
  }
  return records;
}
