/**
 * `workspace diff`: /workspace now against its baseline, both as tar
 * archives on the host. Text files get a unified diff; binary files, mode and
 * type changes get summary entries. Bounded: files above 1 MiB are compared
 * by hash only, and the combined patch text is capped.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

const CONTENT_LIMIT = 1024 * 1024;
const PATCH_LIMIT = 1024 * 1024;

export interface TreeEntry {
  type: "file" | "directory" | "symlink" | "other";
  mode: number;
  size: number;
  sha256: string;
  /** Kept for files up to 1 MiB, to diff them. */
  content?: Buffer;
  linkpath?: string;
}

export interface DiffEntry {
  path: string;
  status: "added" | "modified" | "deleted" | "type_changed" | "mode_changed";
  kind: "text" | "binary" | "symlink" | "directory" | "other";
  mode_before?: string;
  mode_after?: string;
}

export interface DiffResult {
  changed: boolean;
  summary: {
    added: number;
    modified: number;
    deleted: number;
    type_changed: number;
    mode_changed: number;
    binary: number;
  };
  entries: DiffEntry[];
  /** Unified diff of every changed text file. */
  patch: string;
  patch_truncated: boolean;
}

/** Read a tar archive into a map of normalized path → entry. */
export async function readTree(source: Buffer | Readable): Promise<Map<string, TreeEntry>> {
  const tree = new Map<string, TreeEntry>();
  // Loaded when needed (as is `diff` below): commands that never diff never load them.
  const tar = await import("tar");
  const parser = new tar.Parser({
    onReadEntry: (entry) => {
      const normal = path.posix.normalize(entry.path).replace(/\/+$/, "");
      const name = normal === "." ? "" : normal.replace(/^\.\//, "");
      const type =
        entry.type === "File" || entry.type === "OldFile" || entry.type === "ContiguousFile"
          ? "file"
          : entry.type === "Directory"
            ? "directory"
            : entry.type === "SymbolicLink"
              ? "symlink"
              : "other";
      const hash = createHash("sha256");
      const chunks: Buffer[] = [];
      let size = 0;
      entry.on("data", (chunk: Buffer) => {
        hash.update(chunk);
        size += chunk.length;
        if (size <= CONTENT_LIMIT) chunks.push(chunk);
      });
      entry.on("end", () => {
        if (!name || name === ".") return;
        tree.set(name, {
          type,
          mode: (entry.mode ?? 0) & 0o7777,
          size,
          sha256: type === "symlink" ? `link:${entry.linkpath ?? ""}` : hash.digest("hex"),
          ...(type === "file" && size <= CONTENT_LIMIT ? { content: Buffer.concat(chunks) } : {}),
          ...(type === "symlink" ? { linkpath: entry.linkpath ?? "" } : {}),
        });
      });
    },
  });
  const input = Buffer.isBuffer(source) ? Readable.from([source]) : source;
  await pipeline(input, parser);
  return tree;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function asText(content: Buffer | undefined): string | undefined {
  if (!content || content.includes(0)) return undefined;
  try {
    return strictUtf8.decode(content);
  } catch {
    return undefined;
  }
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, "0");
}

/** Compare two trees; paths are shown relative to /workspace. */
export async function diffTrees(
  before: Map<string, TreeEntry>,
  after: Map<string, TreeEntry>,
): Promise<DiffResult> {
  const { createTwoFilesPatch } = await import("diff");
  const entries: DiffEntry[] = [];
  const patches: string[] = [];
  let patchBytes = 0;
  let patchTruncated = false;
  const addPatch = (text: string) => {
    if (patchBytes + text.length > PATCH_LIMIT) {
      patchTruncated = true;
      return;
    }
    patches.push(text);
    patchBytes += text.length;
  };
  const textPatch = (name: string, oldText: string | undefined, newText: string | undefined) => {
    const raw = createTwoFilesPatch(
      oldText === undefined ? "/dev/null" : `a/${name}`,
      newText === undefined ? "/dev/null" : `b/${name}`,
      oldText ?? "",
      newText ?? "",
      "",
      "",
      { context: 3 },
    );
    // jsdiff starts with a ==== line and tabs after the names; git-style output has neither.
    addPatch(raw.replace(/^=+\n/, "").replace(/^(---|\+\+\+) (.*)\t$/gm, "$1 $2"));
  };
  const kindOf = (entry: TreeEntry): DiffEntry["kind"] =>
    entry.type === "file" ? (asText(entry.content) === undefined ? "binary" : "text") : entry.type;

  const names = [...new Set([...before.keys(), ...after.keys()])].sort();
  for (const name of names) {
    const old = before.get(name);
    const now = after.get(name);
    if (old && now && old.type === "directory" && now.type === "directory") {
      if (old.mode !== now.mode)
        entries.push({
          path: name,
          status: "mode_changed",
          kind: "directory",
          mode_before: octal(old.mode),
          mode_after: octal(now.mode),
        });
      continue;
    }
    if (!old && now) {
      if (now.type === "directory") continue; // new files inside it say enough
      const kind = kindOf(now);
      entries.push({ path: name, status: "added", kind, mode_after: octal(now.mode) });
      if (kind === "text") textPatch(name, undefined, asText(now.content));
      continue;
    }
    if (old && !now) {
      if (old.type === "directory") continue;
      const kind = kindOf(old);
      entries.push({ path: name, status: "deleted", kind, mode_before: octal(old.mode) });
      if (kind === "text") textPatch(name, asText(old.content), undefined);
      continue;
    }
    if (!old || !now) continue;
    if (old.type !== now.type) {
      entries.push({
        path: name,
        status: "type_changed",
        kind: kindOf(now),
        mode_before: octal(old.mode),
        mode_after: octal(now.mode),
      });
      continue;
    }
    if (old.sha256 !== now.sha256) {
      const oldKind = kindOf(old);
      const newKind = kindOf(now);
      const kind = oldKind === "binary" || newKind === "binary" ? "binary" : newKind;
      entries.push({
        path: name,
        status: "modified",
        kind,
        ...(old.mode !== now.mode
          ? { mode_before: octal(old.mode), mode_after: octal(now.mode) }
          : {}),
      });
      if (kind === "text") textPatch(name, asText(old.content), asText(now.content));
    } else if (old.mode !== now.mode) {
      entries.push({
        path: name,
        status: "mode_changed",
        kind: kindOf(now),
        mode_before: octal(old.mode),
        mode_after: octal(now.mode),
      });
    }
  }
  const count = (status: DiffEntry["status"]) => entries.filter((e) => e.status === status).length;
  return {
    changed: entries.length > 0,
    summary: {
      added: count("added"),
      modified: count("modified"),
      deleted: count("deleted"),
      type_changed: count("type_changed"),
      mode_changed: count("mode_changed"),
      binary: entries.filter((e) => e.kind === "binary").length,
    },
    entries,
    patch: patches.join(""),
    patch_truncated: patchTruncated,
  };
}
