/**
 * `workspace summary`: one review of a workspace since its last reset (or
 * its create), built from what is already recorded: the command journal,
 * the review events, and a diff against the baseline. Pure: the caller
 * gathers the inputs.
 */
import type { DiffEntry, DiffResult } from "./diff.js";
import type { ReviewEvent } from "./events.js";
import type { JournalEntry } from "./journal.js";
import type { Workspace } from "./payloads.js";
import type { ServiceRecord, ShellRecord } from "../records/store.js";

/** Commands and changed files listed in full up to these counts; the totals are always exact. */
export const SUMMARY_LIST_LIMIT = 200;

export interface WorkspaceSummary {
  workspace_id: string;
  name: string | null;
  state: Workspace["state"];
  environment: string;
  origin_kind: Workspace["origin_kind"];
  origin_ref: string | null;
  /** When the period this review covers began: the last reset, else the create. */
  since: string;
  reset_count: number;
  commands: {
    total: number;
    failed: number;
    timed_out: number;
    /** The most recent ones, oldest first (at most SUMMARY_LIST_LIMIT). */
    items: {
      sequence: number;
      command: string;
      exit_code: number;
      timed_out: boolean;
      duration_ms: number;
      started_at: string;
    }[];
    truncated: boolean;
  };
  /** /workspace against the baseline; null when the workspace is not running (start it to see). */
  changes: {
    summary: DiffResult["summary"];
    files: DiffEntry[];
    truncated: boolean;
  } | null;
  file_writes: Extract<ReviewEvent, { kind: "file_write" }>[];
  patches: Extract<ReviewEvent, { kind: "patch_apply" }>[];
  exports: Extract<ReviewEvent, { kind: "export" }>[];
  syncs: Extract<ReviewEvent, { kind: "sync_push" }>[];
  snapshots: Extract<ReviewEvent, { kind: "snapshot_create" | "snapshot_delete" }>[];
  /** Every service started in the period, in order, with how it ended (or its state now). */
  services: SummaryService[];
  /** Every shell opened in the period, in order, with how it ended (or its state now). */
  shells: SummaryShell[];
}

export interface SummaryShell {
  shell_id: string;
  cwd: string;
  opened_at: string;
  /** "running", "exited", "closed" or "ended" (it went with the VM). */
  state: string;
  closed_at: string | null;
  end_reason: string | null;
}

export interface SummaryService {
  name: string;
  command: string[];
  started_at: string;
  /** What start reported: "ready", "running", or "failed". */
  start_state: string;
  published_ports: { host_port: number; guest_port: number }[];
  /** Its state now (or when it ended), and how it ended. */
  state: string;
  exit_code: number | null;
  stop_reason: string | null;
  ended_at: string | null;
}

/**
 * Pair each service start with what became of it: the stop that followed,
 * a later start under the same name (it had ended by then), or the state
 * the host last saw.
 */
function servicesOf(events: ReviewEvent[], latest: ServiceRecord[]): SummaryService[] {
  const result: SummaryService[] = [];
  events.forEach((event, index) => {
    if (event.kind !== "service_start") return;
    const later = events
      .slice(index + 1)
      .find(
        (e) => (e.kind === "service_start" || e.kind === "service_stop") && e.name === event.name,
      );
    const seen = latest.find((s) => s.name === event.name);
    const end =
      later?.kind === "service_stop"
        ? {
            state: later.state,
            exit_code: null,
            stop_reason: later.stop_reason,
            ended_at: later.at,
          }
        : later
          ? {
              state: "exited",
              exit_code: null,
              stop_reason: "ended before it was started again",
              ended_at: null,
            }
          : event.state === "failed" || !seen
            ? { state: event.state, exit_code: null, stop_reason: null, ended_at: null }
            : {
                state: seen.state,
                exit_code: seen.exit_code,
                stop_reason: seen.stop_reason,
                ended_at: seen.ended_at,
              };
    result.push({
      name: event.name,
      command: event.command,
      started_at: event.at,
      start_state: event.state,
      published_ports: event.published_ports,
      ...end,
    });
  });
  return result;
}

export function summarize(input: {
  workspace: Workspace & { reset_at?: string | null };
  journal: JournalEntry[];
  events: ReviewEvent[];
  diff: DiffResult | undefined;
}): WorkspaceSummary {
  const { workspace, journal, events, diff } = input;
  const items = journal.slice(-SUMMARY_LIST_LIMIT).map((entry) => ({
    sequence: entry.sequence,
    command: entry.command,
    exit_code: entry.exit_code,
    timed_out: entry.timed_out,
    duration_ms: entry.duration_ms,
    started_at: entry.started_at,
  }));
  const of = <K extends ReviewEvent["kind"]>(...kinds: K[]) =>
    events.filter((e): e is Extract<ReviewEvent, { kind: K }> => kinds.includes(e.kind as K));
  return {
    workspace_id: workspace.id,
    name: workspace.name,
    state: workspace.state,
    environment: workspace.environment,
    origin_kind: workspace.origin_kind,
    origin_ref: workspace.origin_ref,
    since: workspace.reset_at ?? workspace.created_at,
    reset_count: workspace.reset_count,
    commands: {
      total: journal.length,
      failed: journal.filter((e) => e.exit_code !== 0).length,
      timed_out: journal.filter((e) => e.timed_out).length,
      items,
      truncated: journal.length > items.length,
    },
    changes: diff
      ? {
          summary: diff.summary,
          files: diff.entries.slice(0, SUMMARY_LIST_LIMIT),
          truncated: diff.entries.length > SUMMARY_LIST_LIMIT,
        }
      : null,
    file_writes: of("file_write"),
    patches: of("patch_apply"),
    exports: of("export"),
    syncs: of("sync_push"),
    snapshots: of("snapshot_create", "snapshot_delete"),
    services: servicesOf(events, workspace.services),
    shells: shellsOf(events, workspace.shells),
  };
}

/** Each shell opened in the period, with its state from the record (closed, ended with the VM, …). */
function shellsOf(events: ReviewEvent[], latest: ShellRecord[]): SummaryShell[] {
  return events.flatMap((event) => {
    if (event.kind !== "shell_open") return [];
    const now = latest.find((s) => s.shell_id === event.shell_id);
    return [
      {
        shell_id: event.shell_id,
        cwd: event.cwd,
        opened_at: event.at,
        state: now?.state ?? "ended",
        closed_at: now?.closed_at ?? null,
        end_reason: now?.end_reason ?? null,
      },
    ];
  });
}

/** The summary as a few lines of text (the CLI's output, and the MCP tool's text copy). */
export function formatSummary(s: WorkspaceSummary): string {
  const lines = [
    `${s.workspace_id}${s.name ? ` (${s.name})` : ""}: ${s.state}, ${s.environment}, seeded from ${s.origin_kind}${s.origin_ref ? ` ${s.origin_ref}` : ""}`,
    `since ${s.since}${s.reset_count ? ` (reset ${s.reset_count} time${s.reset_count === 1 ? "" : "s"})` : ""}`,
    `commands: ${s.commands.total} run, ${s.commands.failed} failed, ${s.commands.timed_out} timed out`,
  ];
  for (const c of s.commands.items.slice(-20)) {
    lines.push(
      `  #${c.sequence} exit ${c.exit_code}${c.timed_out ? " (timed out)" : ""}: ${c.command}`,
    );
  }
  if (s.changes === null) lines.push("changes: unknown (the workspace is not running)");
  else {
    const sum = s.changes.summary;
    lines.push(
      `changes: ${sum.added} added, ${sum.modified} modified, ${sum.deleted} deleted` +
        (sum.type_changed ? `, ${sum.type_changed} type changed` : "") +
        (sum.mode_changed ? `, ${sum.mode_changed} mode changed` : ""),
    );
    for (const f of s.changes.files.slice(0, 50)) lines.push(`  ${f.status} ${f.path}`);
  }
  const counts: [string, number][] = [
    ["file writes", s.file_writes.length],
    ["patches", s.patches.length],
    ["exports", s.exports.length],
    ["syncs", s.syncs.length],
    ["snapshot changes", s.snapshots.length],
  ];
  lines.push(counts.map(([what, n]) => `${what}: ${n}`).join(", "));
  for (const service of s.services) {
    const how = service.stop_reason ? ` (${service.stop_reason})` : "";
    lines.push(
      `service ${service.name}: started ${service.start_state}, now ${service.state}${how}`,
    );
  }
  for (const shell of s.shells) {
    const how = shell.end_reason ? ` (${shell.end_reason})` : "";
    lines.push(
      `shell ${shell.shell_id} in ${shell.cwd}: opened ${shell.opened_at}, now ${shell.state}${how}`,
    );
  }
  return `${lines.join("\n")}\n`;
}
