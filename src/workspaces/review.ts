/**
 * Review: `diff` of /workspace against the baseline, and `summary`, one
 * review of what happened since the last reset.
 */
import fs from "node:fs";
import { PassThrough } from "node:stream";
import { ErrorCodes, PyroError } from "../errors.js";
import {
  BASELINE_FILE,
  EVENTS_FILE,
  JOURNAL_FILE,
  WORKSPACE_ROOT,
  type WorkspaceContext,
} from "./context.js";
import { diffTrees, readTree, type DiffResult } from "./diff.js";
import { readEvents } from "./events.js";
import { readJournal } from "./journal.js";
import { listServices } from "./services.js";
import { summarize, type WorkspaceSummary } from "./summary.js";

/**
 * One review of what happened since the last reset (or create): commands
 * with their exit codes, files changed against the baseline, and the
 * writes, patches, exports, syncs and snapshots made.
 */
export async function summary(ctx: WorkspaceContext, idOrName: string): Promise<WorkspaceSummary> {
  const resolved = ctx.store.resolve(idOrName);
  const running = resolved.state === "started";
  const changes = running ? await diff(ctx, resolved.id) : undefined;
  // Brings the record's view of the services up to date (one may have ended on its own).
  if (running) await listServices(ctx, resolved.id);
  const record = ctx.store.read(resolved.id) ?? resolved;
  return summarize({
    workspace: { ...ctx.payload(record), reset_at: record.reset_at ?? null },
    journal: readJournal(ctx.store.file(record.id, JOURNAL_FILE)),
    events: readEvents(ctx.store.file(record.id, EVENTS_FILE)),
    diff: changes,
  });
}

export async function diff(
  ctx: WorkspaceContext,
  idOrName: string,
): Promise<{ workspace_id: string } & DiffResult> {
  const record = ctx.store.resolve(idOrName);
  const baselineFile = ctx.store.file(record.id, BASELINE_FILE);
  if (!fs.existsSync(baselineFile)) {
    throw new PyroError(ErrorCodes.WorkspaceState, `workspace ${record.id} has no baseline yet`, {
      fix: { kind: "start_workspace", workspace: record.name ?? record.id },
    });
  }
  const current = await ctx.withAgent(record.id, async (agent) => {
    const stream = new PassThrough();
    const tree = readTree(stream);
    await agent
      .tarOut(WORKSPACE_ROOT, (bytes) => stream.write(bytes), WORKSPACE_ROOT)
      .finally(() => stream.end());
    return tree;
  });
  const baseline = await readTree(fs.createReadStream(baselineFile));
  await ctx.touch(record.id);
  return { workspace_id: record.id, ...(await diffTrees(baseline, current)) };
}
