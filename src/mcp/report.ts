/**
 * Shaping SDK payloads for a model: bounded text with a note that says what
 * was cut and how to get the rest, and one-line descriptions.
 */
import { OUTPUT_LIMITS, type Workspace, type WorkspaceExecResult } from "../index.js";
import * as z from "zod";
import { json, loose, type ToolOutput } from "./tool.js";

/** Cut `text` for a model, saying what was cut and how to get it. */
export function clipForModel(
  text: string,
  what: string,
  howToGetRest: string,
  limit: number = OUTPUT_LIMITS.modelChars,
): { text: string; cut: boolean } {
  if (text.length <= limit) return { text, cut: false };
  return {
    text: `${text.slice(0, limit)}\n[${what} cut at ${limit} of ${text.length} characters; ${howToGetRest}]`,
    cut: true,
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

/** A workspace payload with its one-line description as the text copy. */
export function workspaceReport(ws: Workspace, verb = ""): ToolOutput {
  return json(ws, `${verb}${describeWorkspace(ws)}`);
}

export function describeWorkspace(ws: Workspace): string {
  const label = ws.name ? `${ws.id} (${ws.name})` : ws.id;
  const seed =
    ws.origin_kind === "empty"
      ? "empty /workspace"
      : `seeded from ${ws.origin_kind} ${ws.origin_ref}`;
  return `${label}: ${ws.state}, ${ws.environment}, ${seed}, ${ws.command_count} command(s) run${ws.boot_kind ? `, ${ws.boot_kind} start` : ""}`;
}

/** A finished command's result for a model: each stream bounded, with a note when cut. */
export function commandReport(
  result: Pick<WorkspaceExecResult, "stdout" | "stderr" | "truncated">,
  howToGetRest: string,
): { stdout: string; stderr: string; truncated: boolean } {
  const stdout = clipForModel(result.stdout, "stdout", howToGetRest);
  const stderr = clipForModel(result.stderr, "stderr", howToGetRest);
  return {
    stdout: stdout.text,
    stderr: stderr.text,
    truncated: result.truncated || stdout.cut || stderr.cut,
  };
}
