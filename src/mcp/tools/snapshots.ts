/** Named snapshots of /workspace: create, list, delete (reset goes back to one). */
import * as z from "zod";
import {
  CHANGES_WORKSPACE,
  DESTRUCTIVE,
  READ_ONLY,
  defineWorkspaceTool,
  json,
  loose,
} from "../tool.js";

export const snapshotCreate = defineWorkspaceTool({
  name: "snapshot_create",
  title: "Snapshot /workspace",
  description: () =>
    "Save /workspace under a name, to come back to with workspace_reset (snapshot). `baseline` always exists.",
  input: () => ({
    name: z
      .string()
      .min(1)
      .describe("a name for the snapshot (not baseline; an existing name must be deleted first)"),
  }),
  output: loose({ workspace_id: z.string(), name: z.string() }),
  annotations: CHANGES_WORKSPACE,
  run: async (id, args, ctx) => {
    const snap = await ctx.pyro.workspaces.createSnapshot(id, args.name);
    return json(snap, `snapshot ${snap.name} saved (${snap.bytes} bytes)`);
  },
});

export const snapshotList = defineWorkspaceTool({
  name: "snapshot_list",
  title: "List snapshots",
  description: () =>
    "The named snapshots of a workspace's /workspace (baseline first), with when each was taken.",
  input: () => ({}),
  output: loose({ workspace_id: z.string(), snapshots: z.array(loose({ name: z.string() })) }),
  annotations: READ_ONLY,
  run: async (id, _args, ctx) => {
    const list = ctx.pyro.workspaces.listSnapshots(id);
    return json(list, list.snapshots.map((s) => `${s.name} (${s.created_at})`).join("\n"));
  },
});

export const snapshotDelete = defineWorkspaceTool({
  name: "snapshot_delete",
  title: "Delete a snapshot",
  description: () => "Delete a named snapshot of /workspace (the baseline cannot be deleted).",
  input: () => ({
    name: z.string().min(1).describe("the snapshot to delete, as snapshot_list names it"),
  }),
  output: loose({ workspace_id: z.string(), deleted: z.boolean() }),
  annotations: DESTRUCTIVE,
  run: async (id, args, ctx) => {
    const deleted = ctx.pyro.workspaces.deleteSnapshot(id, args.name);
    return json(deleted, `deleted snapshot ${deleted.name} of ${deleted.workspace_id}`);
  },
});
