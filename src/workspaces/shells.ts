/**
 * Shells of a workspace (contract §4 "Shells (PTY)"): open, read, write,
 * signal, close. The guest agent owns the PTYs and their output; the host
 * keeps a record of each shell so that one that went with the VM (stop,
 * reset) or was closed is reported as such, and review events for the
 * summary.
 */
import { randomBytes } from "node:crypto";
import { ErrorCodes, PyroError, isPyroError } from "../errors.js";
import { BOUNDS, DEFAULTS } from "../limits.js";
import type { AgentClient } from "../protocol/client.js";
import {
  SHELL_SIGNALS,
  type ShellInfo,
  type ShellReadResult,
  type ShellSignal,
} from "../protocol/messages.js";
import {
  MAX_SHELL_RECORDS,
  shellIsLive,
  type ShellRecord,
  type WorkspaceRecord,
} from "../records/store.js";
import { WORKSPACE_ROOT, notStarted, type WorkspaceContext } from "./context.js";
import { sameRun } from "./ports.js";
import { secretEnvFor, type SecretEnvSpec } from "./secrets.js";

export interface ShellOpenOptions {
  /** Working directory in the guest (default /workspace). */
  cwd?: string;
  cols?: number;
  rows?: number;
  /** Secrets the shell gets as environment variables ("NAME" or "NAME=VAR", or VAR → NAME). */
  secretEnv?: SecretEnvSpec;
}

export interface ShellReadOptions {
  /** Where to read from: 0, or the next_cursor of the previous read. */
  cursor?: number;
  maxChars?: number;
  /** What a person would see (escape sequences interpreted) instead of raw output. */
  plain?: boolean;
  /** First wait until the shell has been quiet this long (300 is a good value). */
  waitForIdleMs?: number;
}

/** A shell (contract §4): its record, with what the guest says while it is live. */
export interface WorkspaceShell extends ShellRecord {
  workspace_id: string;
  pid: number | null;
  /** Cursor after the last output so far (live shells). */
  end_cursor: number | null;
}

/** A read (contract §4): the guest's cursors and flags, checked, with the text and the shell's state. */
export interface ShellRead extends Omit<ShellReadResult, "shell"> {
  workspace_id: string;
  shell_id: string;
  text: string;
  plain: boolean;
  state: ShellRecord["state"];
  exit_code: number | null;
}

/** One line about a shell: id, state (and why it ended), size and directory. */
export function describeShell(s: WorkspaceShell): string {
  const how =
    s.end_reason !== null
      ? ` (${s.end_reason})`
      : s.exit_code !== null
        ? ` (exit ${s.exit_code})`
        : "";
  return `${s.shell_id}: ${s.state}${how}, ${s.cols}×${s.rows} in ${s.cwd}`;
}

const int = (value: unknown): number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : 0;

/** What the (untrusted) guest says about a shell, reduced to what the host uses, each checked. */
function fromGuest(info: unknown): Pick<ShellInfo, "state" | "pid" | "exit_code" | "end_cursor"> {
  const raw = (typeof info === "object" && info !== null ? info : {}) as Record<string, unknown>;
  const pid = raw.pid;
  const code = raw.exit_code;
  return {
    state: raw.state === "exited" ? "exited" : "running",
    pid: typeof pid === "number" && Number.isSafeInteger(pid) && pid > 0 ? pid : null,
    exit_code:
      typeof code === "number" && Number.isInteger(code) && code >= 0 && code <= 255 ? code : null,
    end_cursor: int(raw.end_cursor),
  };
}

function bounded(
  value: number | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
) {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < min || n > max)
    throw new PyroError(
      ErrorCodes.UsageError,
      `${name} must be an integer from ${min} to ${max}, got ${n}`,
    );
  return n;
}

export async function openShell(
  ctx: WorkspaceContext,
  idOrName: string,
  options: ShellOpenOptions = {},
): Promise<WorkspaceShell> {
  const record = ctx.store.resolve(idOrName);
  const cols = bounded(
    options.cols,
    "cols",
    DEFAULTS.shellCols,
    BOUNDS.shellCols.min,
    BOUNDS.shellCols.max,
  );
  const rows = bounded(
    options.rows,
    "rows",
    DEFAULTS.shellRows,
    BOUNDS.shellRows.min,
    BOUNDS.shellRows.max,
  );
  const secretEnv = secretEnvFor(record, options.secretEnv);
  if (record.state !== "started") throw notStarted(record);
  const shellId = `sh_${randomBytes(4).toString("hex")}`;
  const cwd = options.cwd ?? WORKSPACE_ROOT;
  const info = await ctx.withAgent(record, (agent) =>
    agent.request("shell_open", {
      id: shellId,
      cwd,
      cols,
      rows,
      ...(secretEnv ? { secret_env: secretEnv } : {}),
    }),
  );
  const shell: ShellRecord = {
    shell_id: shellId,
    state: "running",
    cwd,
    cols,
    rows,
    opened_at: new Date().toISOString(),
    closed_at: null,
    exit_code: null,
    end_reason: null,
  };
  await ctx.store.update(record.id, (r) => {
    // The VM went away meanwhile (stop, reset): its shell went with it.
    if (!sameRun(r, record)) {
      shell.state = "ended";
      shell.end_reason = "the workspace's VM went away as it opened";
      shell.closed_at = new Date().toISOString();
    }
    const shells = [...(r.shells ?? []), shell];
    // Forget the oldest finished shells beyond the bound; live ones are always kept.
    while (shells.length > MAX_SHELL_RECORDS) {
      const old = shells.findIndex((s) => !shellIsLive(s));
      if (old === -1) break;
      shells.splice(old, 1);
    }
    r.shells = shells;
    r.last_activity_at = new Date().toISOString();
  });
  ctx.recordEvent(record.id, { kind: "shell_open", shell_id: shellId, cwd });
  return withGuest(record.id, shell, info);
}

export async function readShell(
  ctx: WorkspaceContext,
  idOrName: string,
  shellId: string,
  options: ShellReadOptions = {},
): Promise<ShellRead> {
  const maxChars = bounded(
    options.maxChars,
    "max_chars",
    DEFAULTS.shellMaxChars,
    BOUNDS.shellMaxChars.min,
    BOUNDS.shellMaxChars.max,
  );
  const idleMs = bounded(options.waitForIdleMs, "wait_for_idle_ms", 0, 0, BOUNDS.shellIdleMs.max);
  const cursor = options.cursor ?? 0;
  if (!Number.isSafeInteger(cursor) || cursor < 0)
    throw new PyroError(ErrorCodes.UsageError, `cursor must be 0 or a next_cursor a read returned`);
  return onLiveShell(ctx, idOrName, shellId, async (agent, record, shell) => {
    const read = await agent.shellRead({
      id: shellId,
      cursor,
      max_chars: maxChars,
      plain: options.plain === true,
      wait_for_idle_ms: idleMs,
    });
    const updated = await noteGuestState(ctx, record, shell, read.shell);
    return {
      workspace_id: record.id,
      shell_id: shellId,
      text: read.text,
      plain: options.plain === true,
      cursor: int(read.cursor),
      next_cursor: int(read.next_cursor),
      dropped_bytes: int(read.dropped_bytes),
      truncated: read.truncated === true,
      idle: read.idle === true,
      screen: screenOf(read),
      state: updated.state,
      exit_code: updated.exit_code,
    };
  });
}

function screenOf(read: ShellReadResult): ShellRead["screen"] {
  return read.screen === "normal" || read.screen === "alternate" ? read.screen : null;
}

/** Type `input` into the shell; a newline (Enter) is added unless `appendNewline` is false. */
export async function writeShell(
  ctx: WorkspaceContext,
  idOrName: string,
  shellId: string,
  input: string,
  options: { appendNewline?: boolean } = {},
): Promise<WorkspaceShell & { bytes_written: number }> {
  const text = options.appendNewline === false ? input : `${input}\n`;
  return onLiveShell(ctx, idOrName, shellId, async (agent, record, shell) => {
    const written = await agent.request("shell_write", { id: shellId, input: text });
    const updated = await noteGuestState(ctx, record, shell, written.shell);
    await ctx.touch(record.id);
    return { ...withGuest(record.id, updated, written.shell), bytes_written: int(written.bytes) };
  });
}

/** Send a signal to what runs in the foreground of the shell (the shell itself when nothing does). */
export async function signalShell(
  ctx: WorkspaceContext,
  idOrName: string,
  shellId: string,
  signal: string = "INT",
): Promise<WorkspaceShell & { signal: ShellSignal; process_group: number }> {
  const name = signal.toUpperCase().replace(/^SIG/, "") as ShellSignal;
  if (!SHELL_SIGNALS.includes(name))
    throw new PyroError(
      ErrorCodes.UsageError,
      `signal must be one of ${SHELL_SIGNALS.join(", ")}, got ${signal}`,
    );
  return onLiveShell(ctx, idOrName, shellId, async (agent, record, shell) => {
    const sent = await agent.request("shell_signal", { id: shellId, signal: name });
    const updated = await noteGuestState(ctx, record, shell, sent.shell);
    return {
      ...withGuest(record.id, updated, sent.shell),
      signal: name,
      process_group: int(sent.process_group),
    };
  });
}

export async function closeShell(
  ctx: WorkspaceContext,
  idOrName: string,
  shellId: string,
): Promise<WorkspaceShell> {
  return onLiveShell(ctx, idOrName, shellId, async (agent, record) => {
    let info: ShellInfo | undefined;
    try {
      info = await agent.request("shell_close", { id: shellId });
    } catch (error) {
      // A guest that lost it (an agent restart) has closed it all the same.
      if (!isPyroError(error) || error.code !== ErrorCodes.ShellNotFound) throw error;
    }
    const closed = await finish(ctx, record.id, shellId, {
      state: "closed",
      end_reason: "closed on request",
      exit_code: info === undefined ? null : fromGuest(info).exit_code,
    });
    ctx.recordEvent(record.id, {
      kind: "shell_close",
      shell_id: shellId,
      reason: "closed on request",
    });
    return withGuest(record.id, closed, undefined);
  });
}

export function listShells(
  ctx: WorkspaceContext,
  idOrName: string,
): { workspace_id: string; shells: WorkspaceShell[] } {
  const record = ctx.store.resolve(idOrName);
  return {
    workspace_id: record.id,
    shells: (record.shells ?? []).map((s) => withGuest(record.id, s, undefined)),
  };
}

/**
 * Run `fn` on a shell that is live in a started workspace. A shell that is
 * closed or went with the VM is an error that says so; an unknown id lists
 * the open ones.
 */
async function onLiveShell<T>(
  ctx: WorkspaceContext,
  idOrName: string,
  shellId: string,
  fn: (agent: AgentClient, record: WorkspaceRecord, shell: ShellRecord) => Promise<T>,
): Promise<T> {
  const record = ctx.store.resolve(idOrName);
  const label = record.name ?? record.id;
  const shell = (record.shells ?? []).find((s) => s.shell_id === shellId);
  if (!shell) {
    const known = (record.shells ?? []).filter(shellIsLive).map((s) => s.shell_id);
    throw new PyroError(ErrorCodes.ShellNotFound, `workspace ${label} has no shell ${shellId}`, {
      fix: { kind: "find_shell", workspace: label, known },
    });
  }
  if (!shellIsLive(shell)) {
    const how =
      shell.state === "closed" ? "was closed" : `ended: ${shell.end_reason ?? "its VM went away"}`;
    throw new PyroError(
      ErrorCodes.ShellClosed,
      `shell ${shellId} of ${label} ${how} (at ${shell.closed_at})`,
      {
        fix: { kind: "open_shell", workspace: label },
      },
    );
  }
  if (record.state !== "started") throw notStarted(record);
  return ctx.withAgent(record, async (agent) => {
    try {
      return await fn(agent, record, shell);
    } catch (error) {
      if (isPyroError(error) && error.code === ErrorCodes.ShellNotFound) {
        // The record says live, the guest does not know it: its agent restarted.
        await finish(ctx, record.id, shellId, {
          state: "ended",
          end_reason: "the guest agent restarted",
          exit_code: null,
        });
        throw new PyroError(
          ErrorCodes.ShellClosed,
          `shell ${shellId} of ${label} is gone from the guest`,
          {
            fix: { kind: "open_shell", workspace: label },
          },
        );
      }
      throw error;
    }
  });
}

/** Remember that the guest says the shell has exited. */
async function noteGuestState(
  ctx: WorkspaceContext,
  record: WorkspaceRecord,
  shell: ShellRecord,
  reported: unknown,
): Promise<ShellRecord> {
  const info = fromGuest(reported);
  if (info.state !== "exited" || shell.state === "exited") return shell;
  const exitCode = info.exit_code;
  return (
    (await update(ctx, record.id, shell.shell_id, (s) => {
      if (s.state !== "running") return;
      s.state = "exited";
      s.exit_code = exitCode;
    })) ?? shell
  );
}

async function finish(
  ctx: WorkspaceContext,
  id: string,
  shellId: string,
  end: Pick<ShellRecord, "state" | "end_reason" | "exit_code">,
): Promise<ShellRecord> {
  const done = await update(ctx, id, shellId, (s) => {
    if (!shellIsLive(s)) return; // it ended with the VM meanwhile: that stays the reason
    s.state = end.state;
    s.end_reason = end.end_reason;
    s.exit_code = end.exit_code ?? s.exit_code;
    s.closed_at = new Date().toISOString();
  });
  if (!done) throw new PyroError(ErrorCodes.ShellNotFound, `no shell ${shellId}`);
  return done;
}

async function update(
  ctx: WorkspaceContext,
  id: string,
  shellId: string,
  change: (shell: ShellRecord) => void,
): Promise<ShellRecord | undefined> {
  let found: ShellRecord | undefined;
  await ctx.store.update(id, (r) => {
    found = r.shells?.find((s) => s.shell_id === shellId);
    if (found) change(found);
  });
  return found;
}

function withGuest(workspaceId: string, shell: ShellRecord, reported: unknown): WorkspaceShell {
  const live = reported !== undefined && shellIsLive(shell);
  const info = fromGuest(reported);
  return {
    workspace_id: workspaceId,
    ...shell,
    pid: live ? info.pid : null,
    end_cursor: live ? info.end_cursor : null,
  };
}
