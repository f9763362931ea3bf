/**
 * Shaping SDK payloads for a model: bounded text with a marker where it was
 * cut and a note that says how to get the rest, one-line descriptions, and
 * the notes a result carries in both its text and its structured copy.
 */
import { OUTPUT_LIMITS, type Workspace, type WorkspaceExecResult } from "../index.js";
import * as z from "zod";
import { json, loose, type Note, type ToolOutput } from "./tool.js";

/**
 * Cut `text` for a model. The cut text ends with a marker (so the field
 * says it was cut wherever it is read); `note` says what was cut and how to
 * get the rest, for the result's notes.
 */
export function clipForModel(
  text: string,
  what: string,
  howToGetRest: string,
  limit: number = OUTPUT_LIMITS.modelChars,
): { text: string; cut: boolean; note: Note } {
  if (text.length <= limit) return { text, cut: false, note: undefined };
  return {
    text: `${text.slice(0, limit)}\n[${what} cut here: ${limit} of ${text.length} characters shown; see notes]`,
    cut: true,
    note: `${what} was cut at ${limit} of ${text.length} characters; ${howToGetRest}`,
  };
}

export const workspaceOutput = loose({
  id: z.string(),
  name: z.string().nullable(),
  state: z.string(),
  environment: z.string(),
  origin_kind: z.string(),
  origin_ref: z.string().nullable(),
});

/** Why a call took long: the environment was built (or the guest runtime fetched) inside it. */
export function environmentBuiltNote(environment: string, built: boolean | undefined): Note {
  return (
    built === true &&
    `${environment} was not on this machine yet, so this call built it first (that is why it took long; later calls reuse it). Ask the user to run \`pyro prepare ${environment}\` so that creates stay fast and never outlast a tool-call timeout`
  );
}

/** A workspace payload with its one-line description as the text copy, and notes. */
export function workspaceReport(
  ws: Workspace & {
    seed_skipped?: { path: string; reason: string }[];
    environment_built?: boolean;
  },
  verb = "",
): ToolOutput {
  const skipped = ws.seed_skipped ?? [];
  return json(ws, `${verb}${describeWorkspace(ws)}`, [
    skipped.length > 0 &&
      `${skipped.length} seed entr${skipped.length === 1 ? "y was" : "ies were"} skipped (seed_skipped): ${skipped
        .slice(0, 5)
        .map((s) => `${s.path} (${s.reason})`)
        .join(", ")}${skipped.length > 5 ? ", …" : ""}`,
    environmentBuiltNote(ws.environment, ws.environment_built),
  ]);
}

export function describeWorkspace(ws: Workspace): string {
  const label = ws.name ? `${ws.id} (${ws.name})` : ws.id;
  const seed =
    ws.origin_kind === "empty"
      ? "empty /workspace"
      : `seeded from ${ws.origin_kind} ${ws.origin_ref}`;
  const state = ws.failure_reason ? `${ws.state} (${ws.failure_reason})` : ws.state;
  const expires = ws.expires_at ? `, expires ${ws.expires_at}` : "";
  return `${label}: ${state}, ${ws.environment}, ${seed}, ${ws.command_count} command(s) run${ws.boot_kind ? `, ${ws.boot_kind} start` : ""}${expires}`;
}

/** How to see more of a command's output than a model is handed. */
export const RERUN_TO_FILE =
  "to see more, run it again writing its output to a file (e.g. `CMD > /workspace/out.log 2>&1`) and read that in parts with workspace_exec (`sed -n '1,300p' out.log`, `tail -n 300 out.log`, `grep -n PATTERN out.log`)";

/** A finished command's output for a model: each stream bounded, with markers and notes when cut. */
export function commandReport(
  result: Pick<
    WorkspaceExecResult,
    "stdout" | "stderr" | "truncated" | "stdout_encoding" | "stderr_encoding"
  >,
  howToGetRest: string,
): { stdout: string; stderr: string; truncated: boolean; notes: Note[] } {
  const stdout = clipForModel(result.stdout, "stdout", howToGetRest);
  const stderr = clipForModel(result.stderr, "stderr", howToGetRest);
  const binary = (["stdout", "stderr"] as const).filter(
    (s) => result[`${s}_encoding`] === "base64",
  );
  return {
    stdout: stdout.text,
    stderr: stderr.text,
    truncated: result.truncated || stdout.cut || stderr.cut,
    notes: [
      stdout.note,
      stderr.note,
      result.truncated &&
        `the guest kept only the first ${OUTPUT_LIMITS.streamBytes / 1048576} MiB of a stream: the command printed more`,
      binary.length > 0 &&
        `${binary.join(" and ")} ${binary.length > 1 ? "are" : "is"} not UTF-8 text: shown base64-encoded (${binary.map((s) => `${s}_encoding`).join(", ")} "base64")`,
    ],
  };
}

/** The text of a finished command: its head line, then stdout, then stderr marked as such. */
export function commandText(head: string, shown: { stdout: string; stderr: string }): string {
  return `${head}\n${shown.stdout}${shown.stderr ? `${shown.stdout.endsWith("\n") || !shown.stdout ? "" : "\n"}[stderr]\n${shown.stderr}` : ""}`;
}
