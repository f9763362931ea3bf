/**
 * Moving files between the host and a workspace: `export` out (through a
 * safe host-side extract that never writes outside its output) and
 * `sync push` in (a seed into a started workspace).
 */
import fs from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import { ensurePrivateDir } from "../config/paths.js";
import { ErrorCodes, PyroError } from "../errors.js";
import { safeExtract, type SkippedEntry } from "./archives.js";
import { WORKSPACE_ROOT, notStarted, type WorkspaceContext } from "./context.js";
import { workspacePath } from "./patch.js";
import { prepareSeed, type OriginKind } from "./seed.js";

export async function exportPath(
  ctx: WorkspaceContext,
  idOrName: string,
  guestPath: string,
  output: string,
): Promise<{
  workspace_id: string;
  path: string;
  output: string;
  kind: "file" | "directory";
  bytes: number;
  skipped: SkippedEntry[];
}> {
  const record = ctx.store.resolve(idOrName);
  const target = workspacePath(guestPath);
  const destination = path.resolve(output);
  if (fs.existsSync(destination)) {
    throw new PyroError(ErrorCodes.Conflict, `${destination} already exists`, {
      hint: "choose an output path that does not exist yet",
    });
  }
  const parent = path.dirname(destination);
  ensurePrivateDir(parent);
  const staging = fs.mkdtempSync(path.join(parent, `.pyro-export-`));
  try {
    const { kind, bytes, skipped } = await ctx.withAgent(record.id, async (agent) => {
      const stream = new PassThrough();
      const extracted = safeExtract(stream, staging);
      const result = await agent
        .tarOut(target, (chunk) => stream.write(chunk), WORKSPACE_ROOT)
        .finally(() => stream.end());
      return { kind: result.kind ?? "directory", bytes: result.bytes, skipped: await extracted };
    });
    const source = kind === "file" ? path.join(staging, path.posix.basename(target)) : staging;
    if (kind === "file" && !fs.existsSync(source)) {
      throw new PyroError(ErrorCodes.PathNotAllowed, `${target} could not be exported safely`, {
        details: { skipped },
      });
    }
    fs.renameSync(source, destination);
    ctx.recordEvent(record.id, { kind: "export", path: target, output: destination, bytes });
    await ctx.touch(record.id);
    return { workspace_id: record.id, path: target, output: destination, kind, bytes, skipped };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

export async function syncPush(
  ctx: WorkspaceContext,
  idOrName: string,
  source: string,
  dest = WORKSPACE_ROOT,
): Promise<{
  workspace_id: string;
  source: string;
  destination: string;
  origin_kind: OriginKind;
  files: number;
  bytes: number;
}> {
  const record = ctx.store.resolve(idOrName);
  const destination = workspacePath(dest);
  if (record.state !== "started") throw notStarted(record);
  const seed = await prepareSeed(source);
  try {
    if (seed.tarFile) {
      const tarFile = seed.tarFile;
      await ctx.withAgent(record.id, (agent) =>
        agent.tarIn(destination, fs.createReadStream(tarFile), WORKSPACE_ROOT),
      );
    }
    ctx.recordEvent(record.id, {
      kind: "sync_push",
      source: path.resolve(source),
      destination,
      files: seed.files,
    });
    await ctx.touch(record.id);
    return {
      workspace_id: record.id,
      source: path.resolve(source),
      destination,
      origin_kind: seed.origin_kind,
      files: seed.files,
      bytes: seed.bytes,
    };
  } finally {
    seed.cleanup();
  }
}
