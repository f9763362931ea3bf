/**
 * Review events of a workspace: what changed it besides commands (which are
 * in the journal): file writes, patches, exports, syncs, snapshots, services, shells. One JSON
 * record a line, appended as each happens; a reset starts them over. A torn
 * last line (a killed writer) is skipped when reading.
 */
import { appendJsonLine, readJsonLines } from "../util/jsonl.js";

export type ReviewEvent =
  | { kind: "file_write"; at: string; path: string; bytes: number }
  | { kind: "patch_apply"; at: string; files: { path: string; status: string }[] }
  | { kind: "export"; at: string; path: string; output: string; bytes: number }
  | { kind: "sync_push"; at: string; source: string; destination: string; files: number }
  | { kind: "snapshot_create" | "snapshot_delete"; at: string; name: string }
  | {
      kind: "service_start";
      at: string;
      name: string;
      command: string[];
      /** "ready" or "running" once started, "failed" when it never got there. */
      state: string;
      published_ports: { host_port: number; guest_port: number }[];
    }
  | { kind: "service_stop"; at: string; name: string; state: string; stop_reason: string | null }
  | { kind: "shell_open"; at: string; shell_id: string; cwd: string }
  | { kind: "shell_close"; at: string; shell_id: string; reason: string };

/** An event as recorded: its kind and fields, stamped with the time. */
export type NewReviewEvent = ReviewEvent extends infer E
  ? E extends ReviewEvent
    ? Omit<E, "at">
    : never
  : never;

export function appendEvent(file: string, event: NewReviewEvent): void {
  appendJsonLine(file, { ...event, at: new Date().toISOString() });
}

export function readEvents(file: string): ReviewEvent[] {
  return readJsonLines<ReviewEvent>(file);
}
