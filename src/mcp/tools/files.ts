/** File tools scoped to /workspace: list, read, write, patch, and moving files between host and workspace. */
import * as z from "zod";
import { BOUNDS, DEFAULTS } from "../../index.js";
import { CHANGES_WORKSPACE, READ_ONLY, defineWorkspaceTool, json, loose } from "../tool.js";

/** Entries a listing hands a model at most. */
const LIST_ENTRIES = 2000;

const guestPath = (what: string) =>
  z
    .string()
    .min(1)
    .describe(
      `${what}, relative to /workspace (or absolute under it); it must stay inside /workspace`,
    );

export const workspaceFileList = defineWorkspaceTool({
  name: "workspace_file_list",
  title: "List files",
  description: () =>
    `List a directory under /workspace: each entry's type, size and path. Default the root, one level; recursive lists everything below (at most ${LIST_ENTRIES} entries, with a note when cut).`,
  input: () => ({
    path: z
      .string()
      .optional()
      .describe(
        "the directory to list, relative to /workspace (or absolute under it); default /workspace itself",
      ),
    recursive: z
      .boolean()
      .optional()
      .describe("list subdirectories too, all the way down (default false: one level)"),
  }),
  output: loose({
    workspace_id: z.string(),
    path: z.string(),
    entries: z.array(loose({ path: z.string() })),
    truncated: z.boolean(),
  }),
  annotations: READ_ONLY,
  run: async (id, args, ctx) => {
    const listing = await ctx.pyro.workspaces.listFiles(id, args.path ?? ".", {
      recursive: args.recursive ?? false,
    });
    const entries = listing.entries.slice(0, LIST_ENTRIES);
    const cut = listing.truncated || entries.length < listing.entries.length;
    const text = entries
      .map(
        (e) =>
          `${e.type === "directory" ? "d" : e.type === "symlink" ? "l" : "-"} ${e.size} ${e.path}`,
      )
      .join("\n");
    return json({ ...listing, entries, truncated: cut }, text || "(empty)", [
      cut &&
        `the listing was cut at ${entries.length} entries: list a subdirectory (path), or without recursive, to see the rest`,
    ]);
  },
});

/** max_bytes of the file and disk reads. */
export const maxBytesParam = () =>
  z
    .number()
    .int()
    .positive()
    .max(BOUNDS.fileReadBytes.max)
    .optional()
    .describe(
      `read at most this many bytes from the start (default ${DEFAULTS.fileReadBytes}, at most ${BOUNDS.fileReadBytes.max})`,
    );

/** What a file or disk read returns. */
export const fileReadOutput = loose({
  workspace_id: z.string(),
  path: z.string(),
  content: z.string(),
  encoding: z.string(),
  size: z.number(),
  bytes_read: z.number(),
  truncated: z.boolean(),
});

/** A read's text for a model: its content, and where it was cut. */
export function readText(file: {
  content: string;
  truncated: boolean;
  bytes_read: number;
  size: number;
}): string {
  const marker = file.truncated
    ? `${file.content.endsWith("\n") ? "" : "\n"}[cut here: ${file.bytes_read} of ${file.size} bytes shown; see notes]`
    : "";
  return `${file.content}${marker}`;
}

export const workspaceFileRead = defineWorkspaceTool({
  name: "workspace_file_read",
  title: "Read a file",
  description: () =>
    `Read a file under /workspace. Bounded: at most max_bytes from its start (default ${DEFAULTS.fileReadBytes}); a cut read says so (truncated, bytes_read of size) and how to read the rest. Text comes back as is; content that is not UTF-8 comes back base64 with encoding "base64".`,
  input: () => ({
    path: guestPath("the file to read"),
    max_bytes: maxBytesParam(),
  }),
  output: fileReadOutput,
  annotations: READ_ONLY,
  run: async (id, args, ctx) => {
    const file = await ctx.pyro.workspaces.readFile(id, args.path, { maxBytes: args.max_bytes });
    return json(file, readText(file), [
      file.truncated &&
        `the file was cut at ${file.bytes_read} of ${file.size} bytes; read more with a larger max_bytes (at most ${BOUNDS.fileReadBytes.max}), or the rest in parts with workspace_exec (\`tail -c +${file.bytes_read + 1} ${file.path} | head -c ${DEFAULTS.fileReadBytes}\`, or lines with \`sed -n '2000,2500p' ${file.path}\`)`,
      file.encoding === "base64" && "the content is not UTF-8 text: it is base64-encoded",
    ]);
  },
});

export const workspaceFileWrite = defineWorkspaceTool({
  name: "workspace_file_write",
  title: "Write a file",
  description: () =>
    "Write a whole text file under /workspace (created with its directories; an existing file is replaced and keeps its mode). For a small change to a large file prefer workspace_patch_apply.",
  input: () => ({
    path: guestPath("the file to write"),
    text: z.string().describe("the file's whole new content (UTF-8 text)"),
  }),
  output: loose({ workspace_id: z.string(), path: z.string(), bytes_written: z.number() }),
  annotations: { ...CHANGES_WORKSPACE, idempotentHint: true },
  run: async (id, args, ctx) => {
    const written = await ctx.pyro.workspaces.writeFile(id, args.path, args.text);
    return json(written, `wrote ${written.bytes_written} bytes to ${written.path}`);
  },
});

export const workspacePatchApply = defineWorkspaceTool({
  name: "workspace_patch_apply",
  title: "Apply a patch",
  description: () =>
    "Apply a unified diff to files in /workspace. Every hunk is checked before anything is written: all or nothing. A patch that does not apply names the failing file and hunk; read the file and try again.",
  input: () => ({
    patch: z
      .string()
      .min(1)
      .describe(
        "a unified diff (---/+++ headers and @@ hunks); paths relative to /workspace, a/ and b/ prefixes accepted; /dev/null creates or deletes a file",
      ),
  }),
  output: loose({
    workspace_id: z.string(),
    applied: z.boolean(),
    files: z.array(loose({ path: z.string() })),
  }),
  annotations: CHANGES_WORKSPACE,
  run: async (id, args, ctx) => {
    const applied = await ctx.pyro.workspaces.applyPatch(id, args.patch);
    return json(applied, applied.files.map((f) => `${f.status} ${f.path}`).join("\n"));
  },
});

export const workspaceExport = defineWorkspaceTool({
  name: "workspace_export",
  title: "Export to the host",
  description: () =>
    "Copy a file or directory from /workspace to a host path that does not exist yet (output). Never writes outside that path; unsafe entries (devices, links out) are skipped and listed.",
  input: () => ({
    path: guestPath("the file or directory to copy out"),
    output: z
      .string()
      .min(1)
      .describe("the host path to create (must not exist yet; its parent must)"),
  }),
  output: loose({ workspace_id: z.string(), output: z.string() }),
  annotations: { ...CHANGES_WORKSPACE, openWorldHint: true },
  run: async (id, args, ctx) => {
    const exported = await ctx.pyro.workspaces.export(id, args.path, args.output);
    const skipped = exported.skipped;
    return json(
      exported,
      `exported ${exported.path} to ${exported.output} (${exported.bytes} bytes)`,
      [
        skipped.length > 0 &&
          `${skipped.length} entr${skipped.length === 1 ? "y was" : "ies were"} skipped (skipped): ${skipped
            .slice(0, 5)
            .map((s) => `${s.path} (${s.reason})`)
            .join(", ")}${skipped.length > 5 ? ", …" : ""}`,
      ],
    );
  },
});

export const workspaceSyncPush = defineWorkspaceTool({
  name: "workspace_sync_push",
  title: "Copy host files in",
  description: () =>
    "Copy a host directory or archive into a running workspace under /workspace (dest, default /workspace). Inside a git checkout only tracked and untracked-not-ignored files go.",
  input: () => ({
    source: z
      .string()
      .min(1)
      .describe("the host directory, or .tar/.tar.gz/.tgz archive, to copy in"),
    dest: z
      .string()
      .optional()
      .describe("where to put it, a directory under /workspace (default /workspace)"),
  }),
  output: loose({ workspace_id: z.string(), files: z.number() }),
  annotations: CHANGES_WORKSPACE,
  run: async (id, args, ctx) => {
    const pushed = await ctx.pyro.workspaces.syncPush(id, args.source, args.dest);
    return json(
      pushed,
      `copied ${pushed.files} files (${pushed.bytes} bytes) from ${pushed.source} to ${pushed.destination}`,
    );
  },
});
