/**
 * Failures as MCP tool errors a model can act on: the message, then the fix
 * in terms of this server's tools (not CLI commands).
 */
import { ErrorCodes, toPyroError } from "../errors.js";
import type { Surface, ToolName } from "./catalog.js";

export function toolErrorText(error: unknown, surface: Surface): string {
  const modelHint = (error as { modelHint?: unknown } | undefined)?.modelHint;
  if (typeof modelHint === "string") return `error: ${(error as Error).message}\nfix: ${modelHint}`;
  const e = toPyroError(error);
  const has = (tool: ToolName) => surface.tools.includes(tool);
  let fix = e.hint;
  switch (e.code) {
    case ErrorCodes.WorkspaceNotFound: {
      const known = Array.isArray(e.details?.known) ? (e.details.known as string[]) : [];
      fix = known.length
        ? `use one of the known workspaces: ${known.join(", ")}`
        : "there are no workspaces: call workspace_create first";
      break;
    }
    case ErrorCodes.WorkspaceState:
      fix = has("workspace_start")
        ? "call workspace_start to boot it again (its files are kept)"
        : has("workspace_reset")
          ? "call workspace_reset to bring it back at its baseline, or workspace_create for a new one"
          : "call workspace_create for a new workspace";
      break;
    case ErrorCodes.LimitExceeded:
      fix = `${e.hint ?? ""}${has("workspace_delete") ? "; delete a workspace you no longer need with workspace_delete" : ""}`;
      break;
    case ErrorCodes.PatchFailed:
      fix = "read the file with workspace_file_read and make a patch against its current content";
      break;
    case ErrorCodes.PathNotAllowed:
      fix = "use a path relative to /workspace (no .., no symlinks that lead out)";
      break;
    default:
      break;
  }
  return `error [${e.code}]: ${e.message}${fix ? `\nfix: ${fix}` : ""}`;
}
