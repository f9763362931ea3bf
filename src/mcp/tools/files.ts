/** File tools scoped to /workspace: list, read, write, patch, and moving files between host and workspace. */
import * as z from "zod";
import { BOUNDS, DEFAULTS } from "../../index.js";
import { CHANGES_WORKSPACE, READ_ONLY, defineWorkspaceTool, json, loose } from "../tool.js";

export const workspaceFileList = defineWorkspaceTool({
  name: "workspace_file_list",
  title: "List files",
  description: () =>
    "List a directory under /workspace (path relative to /workspace, default the root; recursive optional, bounded).",
  input: () => ({ path: z.string().optional(), recursive: z.boolean().optional() }),
  output: loose({
    workspace_id: z.string(),
    path: z.string(),
    entries: z.array(loose({ path: z.string() })),
  }),
  annotations: READ_ONLY,
  run: async (id, args, ctx) => {
    const listing = await ctx.pyro.workspaces.listFiles(id, args.path ?? ".", {
      recursive: args.recursive ?? false,
    });
    const entries = listing.entries.slice(0, 2000);
    const text =
      entries
        .map(
          (e) =>
            `${e.type === "directory" ? "d" : e.type === "symlink" ? "l" : "-"} ${e.size} ${e.path}`,
        )
        .join("\n") +
      (listing.truncated || entries.length < listing.entries.length
        ? `\n[listing cut; list a subdirectory to see the rest]`
        : "");
    return json({ ...listing, entries }, text || "(empty)");
  },
});

export const workspaceFileRead = defineWorkspaceTool({
  name: "workspace_file_read",
  title: "Read a file",
  description: () =>
    `Read a text file under /workspace (path relative to /workspace). Bounded: at most max_bytes (default ${DEFAULTS.fileReadBytes}); says when it was cut. Binary content comes back base64 with encoding "base64".`,
  input: () => ({
    path: z.string().min(1),
    max_bytes: z.number().int().positive().max(BOUNDS.fileReadBytes.max).optional(),
  }),
  output: loose({
    workspace_id: z.string(),
    path: z.string(),
    content: z.string(),
    truncated: z.boolean(),
  }),
  annotations: READ_ONLY,
  run: async (id, args, ctx) => {
    const file = await ctx.pyro.workspaces.readFile(id, args.path, { maxBytes: args.max_bytes });
    const note = file.truncated
      ? `\n[cut at ${file.bytes_read} of ${file.size} bytes; read the rest with workspace_exec (e.g. sed -n '2000,4000p' ${file.path})]`
      : "";
    return json(file, `${file.content}${note}`);
  },
});

export const workspaceFileWrite = defineWorkspaceTool({
  name: "workspace_file_write",
  title: "Write a file",
  description: () =>
    "Write a whole text file under /workspace (created with its directories; an existing file keeps its mode). For a small change to a large file prefer workspace_patch_apply.",
  input: () => ({ path: z.string().min(1), text: z.string() }),
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
    "Apply a unified diff (paths relative to /workspace, a/ and b/ prefixes accepted) to files in /workspace. Every hunk is checked before anything is written: all or nothing. A patch that does not apply names the failing file and hunk; read the file and try again.",
  input: () => ({ patch: z.string().min(1) }),
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
    "Copy a file or directory from /workspace to a host path that does not exist yet. Never writes outside that path; unsafe entries (devices, links out) are skipped and listed.",
  input: () => ({
    path: z.string().min(1).describe("file or directory under /workspace"),
    output_path: z.string().min(1).describe("host path to create"),
  }),
  output: loose({ workspace_id: z.string(), output: z.string() }),
  annotations: { ...CHANGES_WORKSPACE, openWorldHint: true },
  run: async (id, args, ctx) => {
    const exported = await ctx.pyro.workspaces.export(id, args.path, args.output_path);
    return json(
      exported,
      `exported ${exported.path} to ${exported.output} (${exported.bytes} bytes)`,
    );
  },
});

export const workspaceSyncPush = defineWorkspaceTool({
  name: "workspace_sync_push",
  title: "Copy host files in",
  description: () =>
    "Copy a host directory or archive into a running workspace under /workspace (dest, default /workspace). Inside a git checkout only tracked and untracked-not-ignored files go.",
  input: () => ({
    source: z.string().describe("host path"),
    dest: z.string().optional().describe("path under /workspace"),
  }),
  output: loose({ workspace_id: z.string(), files: z.number() }),
  annotations: CHANGES_WORKSPACE,
  run: async (id, args, ctx) =>
    json(await ctx.pyro.workspaces.syncPush(id, args.source, args.dest)),
});
