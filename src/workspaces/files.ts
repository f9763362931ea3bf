/**
 * Model-native file access scoped to /workspace: list, bounded read, whole
 * write (keeping an existing file's mode), and unified-diff patches applied
 * all or nothing.
 */
import { ErrorCodes, PyroError, isPyroError } from "../errors.js";
import { encodeOutput, type OutputEncoding } from "../protocol/command.js";
import type { DirEntry } from "../protocol/messages.js";
import { WORKSPACE_ROOT, type WorkspaceContext } from "./context.js";
import { planPatch, workspacePath, type PatchFileChange } from "./patch.js";
import { DEFAULTS, OUTPUT_LIMITS } from "../limits.js";
import { redactorFor } from "./secrets.js";

export async function listFiles(
  ctx: WorkspaceContext,
  idOrName: string,
  guestPath = ".",
  options: { recursive?: boolean } = {},
): Promise<{ workspace_id: string; path: string; entries: DirEntry[]; truncated: boolean }> {
  const record = ctx.store.resolve(idOrName);
  const target = workspacePath(guestPath);
  const listing = await ctx.withAgent(record.id, (agent) =>
    agent.listDir(target, { recursive: options.recursive ?? false, scope: WORKSPACE_ROOT }),
  );
  await ctx.touch(record.id);
  return { workspace_id: record.id, path: target, ...listing };
}

export async function readFile(
  ctx: WorkspaceContext,
  idOrName: string,
  guestPath: string,
  options: { maxBytes?: number } = {},
): Promise<{
  workspace_id: string;
  path: string;
  content: string;
  encoding: OutputEncoding;
  size: number;
  bytes_read: number;
  truncated: boolean;
}> {
  const record = ctx.store.resolve(idOrName);
  const target = workspacePath(guestPath);
  const maxBytes = options.maxBytes ?? DEFAULTS.fileReadBytes;
  if (!Number.isInteger(maxBytes) || maxBytes <= 0) {
    throw new PyroError(
      ErrorCodes.UsageError,
      `max bytes must be a positive integer, got ${maxBytes}`,
    );
  }
  const file = await ctx.withAgent(record.id, (agent) =>
    agent.readFile(target, maxBytes, WORKSPACE_ROOT),
  );
  await ctx.touch(record.id);
  // Redacted as bytes, before a file that is not UTF-8 becomes base64 (redaction could not see it then).
  const content = redactorFor(ctx, record).redactBytes(file.content, { cut: file.truncated });
  const { text, encoding } = encodeOutput(content);
  return {
    workspace_id: record.id,
    path: target,
    content: text,
    encoding,
    size: file.size,
    bytes_read: file.content.length,
    truncated: file.truncated,
  };
}

export async function writeFile(
  ctx: WorkspaceContext,
  idOrName: string,
  guestPath: string,
  content: string | Buffer,
): Promise<{ workspace_id: string; path: string; bytes_written: number }> {
  const record = ctx.store.resolve(idOrName);
  const target = workspacePath(guestPath);
  if (target === WORKSPACE_ROOT)
    throw new PyroError(ErrorCodes.PathNotAllowed, "cannot write to /workspace itself");
  const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content, "utf8");
  const result = await ctx.withAgent(record.id, async (agent) => {
    const mode = await agent.readFile(target, 0, WORKSPACE_ROOT).then(
      (f) => f.mode,
      () => undefined,
    );
    return agent.writeFile(target, bytes, {
      parents: true,
      scope: WORKSPACE_ROOT,
      ...(mode ? { mode } : {}),
    });
  });
  ctx.recordEvent(record.id, { kind: "file_write", path: target, bytes: result.bytes_written });
  await ctx.touch(record.id);
  return { workspace_id: record.id, path: target, bytes_written: result.bytes_written };
}

export async function applyPatch(
  ctx: WorkspaceContext,
  idOrName: string,
  patchText: string,
): Promise<{ workspace_id: string; applied: true; files: PatchFileChange[] }> {
  const record = ctx.store.resolve(idOrName);
  const files = await ctx.withAgent(record.id, async (agent) => {
    const modes = new Map<string, number>();
    const plan = await planPatch(patchText, async (target) => {
      try {
        const file = await agent.readFile(target, OUTPUT_LIMITS.patchFileBytes, WORKSPACE_ROOT);
        if (file.truncated)
          throw new PyroError(ErrorCodes.PatchFailed, `${target} is too large to patch`);
        modes.set(target, file.mode);
        return file.content.toString("utf8");
      } catch (error) {
        if (isPyroError(error) && error.code === ErrorCodes.FileNotFound) return undefined;
        throw error;
      }
    });
    const done: typeof plan = [];
    try {
      for (const change of plan) {
        if (change.after === undefined) await agent.remove(change.target, WORKSPACE_ROOT);
        else {
          const mode = modes.get(change.target);
          await agent.writeFile(change.target, Buffer.from(change.after, "utf8"), {
            parents: true,
            scope: WORKSPACE_ROOT,
            ...(mode ? { mode } : {}),
          });
        }
        done.push(change);
      }
    } catch (error) {
      // Put back what was already written: all or nothing.
      for (const change of done.reverse()) {
        if (change.before === undefined)
          await agent.remove(change.target, WORKSPACE_ROOT).catch(() => {});
        else
          await agent
            .writeFile(change.target, Buffer.from(change.before, "utf8"), {
              scope: WORKSPACE_ROOT,
            })
            .catch(() => {});
      }
      throw error;
    }
    return plan.map(({ path: p, status }) => ({ path: p, status }));
  });
  ctx.recordEvent(record.id, { kind: "patch_apply", files });
  await ctx.touch(record.id);
  return { workspace_id: record.id, applied: true, files };
}
