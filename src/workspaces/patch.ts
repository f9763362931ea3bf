/**
 * Applying a unified diff to /workspace: parse, read every target, apply
 * every hunk in memory, and only then write. If any file fails nothing is
 * written and the error names the file and the hunk. If a write fails
 * midway, files already written are put back.
 */
import path from "node:path";
import type { StructuredPatch } from "diff";
import { ErrorCodes, PyroError } from "../errors.js";

export interface PatchFileChange {
  path: string;
  status: "added" | "modified" | "deleted";
}

export interface PlannedChange extends PatchFileChange {
  /** Absolute guest path. */
  target: string;
  before: string | undefined;
  after: string | undefined;
}

/** How the planner reads current guest files (undefined: the file does not exist). */
export type ReadGuestFile = (target: string) => Promise<string | undefined>;

function stripPrefix(name: string | undefined): string | undefined {
  if (!name || name === "/dev/null") return undefined;
  const clean = name.split("\t")[0]!.trim();
  return clean.replace(/^[ab]\//, "");
}

/** Resolve a path given to a workspace tool to an absolute guest path inside /workspace. */
export function workspacePath(input: string, root = "/workspace"): string {
  const candidate = path.posix.isAbsolute(input) ? input : path.posix.join(root, input);
  const normal = path.posix.normalize(candidate);
  if (normal !== root && !normal.startsWith(`${root}/`)) {
    throw new PyroError(ErrorCodes.PathNotAllowed, `${input} is outside ${root}`, {
      hint: `use a path relative to ${root} or an absolute path under it`,
    });
  }
  return normal.replace(/\/$/, "");
}

export function describeHunk(hunk: StructuredPatch["hunks"][number], index: number): string {
  return `hunk ${index + 1} (@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@)`;
}

/** Check the whole patch against the current files; returns the writes to make. Writes nothing. */
export async function planPatch(patchText: string, read: ReadGuestFile): Promise<PlannedChange[]> {
  const { applyPatch, parsePatch } = await import("diff"); // loaded when a patch comes
  let parsed: StructuredPatch[];
  try {
    parsed = parsePatch(patchText);
  } catch (error) {
    throw new PyroError(ErrorCodes.PatchFailed, `not a unified diff: ${(error as Error).message}`, {
      hint: "give a unified diff (diff -u or git diff output); nothing was changed",
    });
  }
  const files = parsed.filter((p) => p.hunks.length > 0 || p.oldFileName || p.newFileName);
  if (files.length === 0 || files.every((p) => p.hunks.length === 0)) {
    throw new PyroError(ErrorCodes.PatchFailed, "the patch contains no hunks", {
      hint: "give a unified diff with ---/+++ headers and @@ hunks; nothing was changed",
    });
  }
  const planned: PlannedChange[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    const oldName = stripPrefix(file.oldFileName);
    const newName = stripPrefix(file.newFileName);
    const name = newName ?? oldName;
    if (!name) throw new PyroError(ErrorCodes.PatchFailed, "a file in the patch has no name");
    const target = workspacePath(name);
    if (seen.has(target))
      throw new PyroError(ErrorCodes.PatchFailed, `${name} appears twice in the patch`);
    seen.add(target);
    const status: PatchFileChange["status"] = !oldName
      ? "added"
      : !newName
        ? "deleted"
        : "modified";
    const before = await read(target);
    if (status === "added" && before !== undefined) {
      throw new PyroError(
        ErrorCodes.PatchFailed,
        `${name} already exists, but the patch creates it; nothing was changed`,
      );
    }
    if (status !== "added" && before === undefined) {
      throw new PyroError(ErrorCodes.PatchFailed, `${name} does not exist; nothing was changed`, {
        hint: "check the file names in the ---/+++ headers (paths relative to /workspace, a/ and b/ prefixes allowed)",
      });
    }
    const after = applyPatch(before ?? "", file);
    if (after === false) {
      throw new PyroError(
        ErrorCodes.PatchFailed,
        `${firstFailingHunk(before ?? "", file, applyPatch)} does not apply to ${name}; nothing was changed`,
        { fix: { kind: "reread_file", path: name } },
      );
    }
    if (status === "deleted" && after !== "") {
      throw new PyroError(
        ErrorCodes.PatchFailed,
        `the patch deletes ${name}, but ${name} has content the patch does not remove; nothing was changed`,
        { fix: { kind: "reread_file", path: name } },
      );
    }
    planned.push({
      path: name,
      target,
      status,
      before,
      after: status === "deleted" ? undefined : after,
    });
  }
  return planned;
}

function firstFailingHunk(
  content: string,
  file: StructuredPatch,
  applyPatch: (typeof import("diff"))["applyPatch"],
): string {
  for (let i = 0; i < file.hunks.length; i++) {
    if (applyPatch(content, { ...file, hunks: file.hunks.slice(0, i + 1) }) === false) {
      return describeHunk(file.hunks[i]!, i);
    }
  }
  return "a hunk";
}
