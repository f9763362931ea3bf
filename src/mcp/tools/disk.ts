/** Disk tools: a stopped workspace's disk, read offline without booting it (workspace-full only). */
import * as z from "zod";
import { BOUNDS, DEFAULTS, RUNTIME_ONLY_PATHS } from "../../index.js";
import { READ_ONLY, defineWorkspaceTool, json, loose } from "../tool.js";
import { fileReadOutput, maxBytesParam, readText } from "./files.js";

/** Entries handed to a model at most; the rest is said to be there. */
const MODEL_ENTRIES = 2000;

const SCOPE = `The workspace must be stopped (workspace_stop; for a running one use the workspace_file_* tools). Paths are guest paths: absolute anywhere on its root filesystem, or relative to /workspace. Runtime-only paths (${RUNTIME_ONLY_PATHS.join(", ")}) are left out: what the guest saw there was never on its disk. Symlinks are shown, never followed.`;

const pathParam = z
  .string()
  .min(1)
  .describe("guest path: absolute, or relative to /workspace (e.g. src/app.py)");

export const workspaceDiskList = defineWorkspaceTool({
  name: "workspace_disk_list",
  title: "List a stopped workspace's disk",
  description: () =>
    `List a directory on a stopped workspace's disk, read offline without booting it (default /workspace; recursive optional; at most ${MODEL_ENTRIES} entries shown). ${SCOPE}`,
  input: () => ({
    path: pathParam.optional(),
    recursive: z.boolean().optional().describe("list subdirectories too (breadth first)"),
  }),
  output: loose({
    workspace_id: z.string(),
    path: z.string(),
    entries: z.array(
      loose({
        path: z.string(),
        type: z.string(),
        size: z.number(),
        mode: z.number(),
        link_target: z.string().optional(),
      }),
    ),
    truncated: z.boolean(),
    excluded: z.array(z.string()),
  }),
  annotations: READ_ONLY,
  run: async (id, args, ctx) => {
    const listing = await ctx.pyro.workspaces.listDisk(id, args.path, {
      recursive: args.recursive ?? false,
    });
    const entries = listing.entries.slice(0, MODEL_ENTRIES);
    const truncated = listing.truncated || entries.length < listing.entries.length;
    const notes = [
      ...(listing.excluded.length
        ? [`runtime-only, not listed: ${listing.excluded.join(", ")}`]
        : []),
      ...(truncated
        ? [
            `listing cut at ${entries.length} entries; list a subdirectory (or without recursive) to see the rest`,
          ]
        : []),
    ];
    const lines = entries.map(
      (e) =>
        `${e.type === "directory" ? "d" : e.type === "symlink" ? "l" : e.type === "file" ? "-" : "?"} ${e.size} ${e.path}${e.link_target === undefined ? "" : ` -> ${e.link_target}`}`,
    );
    const text = `${listing.path}:\n${lines.join("\n") || "(empty)"}`;
    return json({ ...listing, entries, truncated }, text, notes);
  },
});

export const workspaceDiskRead = defineWorkspaceTool({
  name: "workspace_disk_read",
  title: "Read a file from a stopped workspace's disk",
  description: () =>
    `Read a file from a stopped workspace's disk, offline without booting it. Bounded: at most max_bytes (default ${DEFAULTS.fileReadBytes}, up to ${BOUNDS.fileReadBytes.max}); says when it was cut. Binary content comes back base64 with encoding "base64". ${SCOPE}`,
  input: () => ({
    path: pathParam,
    max_bytes: maxBytesParam(),
  }),
  output: fileReadOutput,
  annotations: READ_ONLY,
  run: async (id, args, ctx) => {
    const file = await ctx.pyro.workspaces.readDisk(id, args.path, { maxBytes: args.max_bytes });
    const note = file.truncated
      ? `cut at ${file.bytes_read} of ${file.size} bytes; ` +
        (file.bytes_read < BOUNDS.fileReadBytes.max
          ? `call again with max_bytes up to ${BOUNDS.fileReadBytes.max}`
          : "for the rest start the workspace and use workspace_exec (e.g. tail -c +N), or export the disk with workspace_disk_export")
      : undefined;
    return json(file, readText(file), [
      note,
      file.encoding === "base64" && "the content is not UTF-8 text: it is base64-encoded",
    ]);
  },
});

export const workspaceDiskExport = defineWorkspaceTool({
  name: "workspace_disk_export",
  title: "Export a stopped workspace's disk",
  description: () =>
    "Write a stopped workspace's whole disk (its root filesystem as last synced) to a host file as a raw ext4 image, offline without booting it. The file is sparse but its size is the disk's (several GiB); output must not exist yet. The workspace must be stopped (workspace_stop). For a few files prefer workspace_disk_read or workspace_export.",
  input: () => ({
    output: z.string().min(1).describe("host path of the image to create (must not exist yet)"),
  }),
  output: loose({
    workspace_id: z.string(),
    output: z.string(),
    format: z.string(),
    filesystem: z.string(),
    bytes: z.number(),
    journal_replayed: z.boolean(),
  }),
  annotations: {
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: false,
    openWorldHint: true,
  },
  run: async (id, args, ctx) => {
    const exported = await ctx.pyro.workspaces.exportDisk(id, args.output);
    return json(
      exported,
      `exported the disk of ${exported.workspace_id} to ${exported.output} (raw ext4, ${exported.bytes} bytes, sparse)`,
    );
  },
});
