/**
 * Shells (contract §4 "Shells (PTY)"): interactive login shells on a PTY,
 * each in its own session and process group. Output is kept in the guest
 * whether or not anyone reads it (terminal.ts); reads take a cursor and
 * can wait for the shell to go quiet. A shell whose process exits stays
 * readable until it is closed.
 */
import fs from "node:fs";
import type { ChannelContext, Handler } from "../protocol/channel-server.js";
import { OpError, WireCodes } from "../protocol/errors.js";
import { Stream } from "../protocol/frames.js";
import {
  SHELL_SIGNALS,
  type ShellInfo,
  type ShellOpenArgs,
  type ShellReadArgs,
  type ShellReadResult,
  type ShellSignal,
} from "../protocol/messages.js";
import { BOUNDS, DEFAULTS, OUTPUT_LIMITS } from "../limits.js";
import { BASE_ENV, optNumber, str } from "./process.js";
import { secretEnvironment, secretsRedactor, secretsStream } from "./secrets.js";
import type { TerminalSession } from "./terminal.js";

export const SHELL_LIMITS = {
  /** Shells open at once (exited ones that are not closed count): each holds a terminal's memory. */
  shells: 8,
  readWaitMs: DEFAULTS.shellReadWaitSeconds * 1000,
  /** How long open waits for the shell's first output (its prompt). */
  firstOutputMs: 10_000,
} as const;

const ID_PATTERN = /^[A-Za-z0-9_-]{1,40}$/;

interface Shell {
  session: TerminalSession;
  info: Omit<ShellInfo, "state" | "pid" | "ended_at" | "exit_code" | "signal" | "end_cursor">;
  endedAt: string | null;
}

const shells = new Map<string, Shell>();

function infoOf(shell: Shell): ShellInfo {
  const { session } = shell;
  if (session.exit && !shell.endedAt) shell.endedAt = new Date().toISOString();
  return {
    ...shell.info,
    state: session.running ? "running" : "exited",
    pid: session.running ? session.pid : null,
    ended_at: shell.endedAt,
    exit_code: session.exit?.code ?? null,
    signal: session.exit?.signal ?? null,
    end_cursor: session.end,
  };
}

function find(id: unknown): Shell {
  const name = str(id, "id");
  const shell = shells.get(name);
  if (!shell) {
    const known = [...shells.keys()];
    throw new OpError(
      WireCodes.ShellNotFound,
      `no shell ${name} in the guest${known.length ? ` (open: ${known.join(", ")})` : ""}`,
    );
  }
  return shell;
}

function bounded(value: unknown, name: string, fallback: number, min: number, max: number) {
  const n = optNumber(value, name) ?? fallback;
  if (!Number.isInteger(n) || n < min || n > max)
    throw new OpError(WireCodes.BadArgs, `${name} must be an integer from ${min} to ${max}`);
  return n;
}

/** Bash as a login shell where the environment has it (Debian always does), else sh. */
function shellProgram(): string {
  return fs.existsSync("/bin/bash") ? "/bin/bash" : "/bin/sh";
}

async function shellOpen(rawArgs: Record<string, unknown>): Promise<ShellInfo> {
  const args = rawArgs as unknown as ShellOpenArgs;
  // Loaded first: from the checks below to the shell in the map, nothing awaits (two opens cannot both pass).
  const { TerminalSession } = await import("./terminal.js");
  const id = str(args.id, "id");
  if (!ID_PATTERN.test(id)) throw new OpError(WireCodes.BadArgs, `bad shell id ${id}`);
  if (shells.has(id)) throw new OpError(WireCodes.BadArgs, `shell ${id} is already open`);
  if (shells.size >= SHELL_LIMITS.shells)
    throw new OpError(
      WireCodes.LimitExceeded,
      `${SHELL_LIMITS.shells} shells are open in this workspace: close one first`,
    );
  const cols = bounded(
    args.cols,
    "cols",
    DEFAULTS.shellCols,
    BOUNDS.shellCols.min,
    BOUNDS.shellCols.max,
  );
  const rows = bounded(
    args.rows,
    "rows",
    DEFAULTS.shellRows,
    BOUNDS.shellRows.min,
    BOUNDS.shellRows.max,
  );
  const cwd = args.cwd ?? "/workspace";
  if (!fs.existsSync(cwd) || !fs.statSync(cwd).isDirectory())
    throw new OpError(
      WireCodes.CwdNotFound,
      `working directory ${cwd} does not exist in the guest`,
    );
  const env = {
    ...BASE_ENV,
    TERM: "xterm-256color",
    ...(args.env ?? {}),
    ...secretEnvironment(args.secret_env),
  };
  const session = new TerminalSession({
    file: shellProgram(),
    args: ["-l"],
    cwd,
    cols,
    rows,
    env,
    redaction: { stream: secretsStream(), text: (text) => secretsRedactor().redact(text) },
    ringBytes: OUTPUT_LIMITS.shellRingBytes,
  });
  const shell: Shell = {
    session,
    info: { id, cwd, cols, rows, started_at: new Date().toISOString() },
    endedAt: null,
  };
  shells.set(id, shell);
  // Answer once the shell is there to talk to: its prompt is printed.
  await session.firstOutput(SHELL_LIMITS.firstOutputMs);
  return infoOf(shell);
}

async function shellRead(
  rawArgs: Record<string, unknown>,
  ctx: ChannelContext,
): Promise<ShellReadResult> {
  const args = rawArgs as unknown as ShellReadArgs;
  const shell = find(args.id);
  const cursor = optNumber(args.cursor, "cursor") ?? 0;
  const maxChars = bounded(
    args.max_chars,
    "max_chars",
    DEFAULTS.shellMaxChars,
    BOUNDS.shellMaxChars.min,
    BOUNDS.shellMaxChars.max,
  );
  const idleMs = bounded(args.wait_for_idle_ms, "wait_for_idle_ms", 0, 0, BOUNDS.shellIdleMs.max);
  const { session } = shell;
  if (!Number.isInteger(cursor) || cursor > session.end)
    throw new OpError(
      WireCodes.BadArgs,
      `cursor ${cursor} is past the end of the shell's output (${session.end}): use a next_cursor a read returned`,
    );
  const idle = idleMs > 0 ? await session.waitForIdle(idleMs, SHELL_LIMITS.readWaitMs) : true;
  const read = args.plain
    ? await session.readPlain(cursor, maxChars)
    : session.readRaw(cursor, maxChars);
  await ctx.write(Stream.Stdout, Buffer.from(read.text));
  return {
    cursor: read.cursor,
    next_cursor: read.nextCursor,
    dropped_bytes: read.droppedBytes,
    truncated: read.truncated,
    idle,
    screen: read.screen,
    shell: infoOf(shell),
  };
}

async function shellWrite(
  rawArgs: Record<string, unknown>,
): Promise<{ bytes: number; shell: ShellInfo }> {
  const shell = find(rawArgs.id);
  const input = rawArgs.input;
  if (typeof input !== "string") throw new OpError(WireCodes.BadArgs, "input must be a string");
  if (Buffer.byteLength(input) > OUTPUT_LIMITS.shellInputBytes)
    throw new OpError(
      WireCodes.BadArgs,
      `input is longer than ${OUTPUT_LIMITS.shellInputBytes} bytes: write it in parts, or put it in a file`,
    );
  if (!shell.session.running)
    throw new OpError(
      WireCodes.ShellExited,
      `shell ${shell.info.id} has exited (code ${shell.session.exit?.code}): it takes no more input`,
    );
  const bytes = shell.session.write(input);
  return { bytes, shell: infoOf(shell) };
}

async function shellSignal(
  rawArgs: Record<string, unknown>,
): Promise<{ process_group: number; shell: ShellInfo }> {
  const shell = find(rawArgs.id);
  const signal = rawArgs.signal as ShellSignal;
  if (!SHELL_SIGNALS.includes(signal))
    throw new OpError(WireCodes.BadArgs, `signal must be one of ${SHELL_SIGNALS.join(", ")}`);
  if (!shell.session.running)
    throw new OpError(WireCodes.ShellExited, `shell ${shell.info.id} has exited`);
  const group = shell.session.signal(signal);
  return { process_group: group, shell: infoOf(shell) };
}

async function shellClose(rawArgs: Record<string, unknown>): Promise<ShellInfo> {
  const shell = find(rawArgs.id);
  shells.delete(shell.info.id);
  await shell.session.close();
  return infoOf(shell);
}

async function shellList(): Promise<{ shells: ShellInfo[] }> {
  return { shells: [...shells.values()].map(infoOf) };
}

export const shellHandlers: Record<string, Handler> = {
  shell_open: shellOpen,
  shell_read: shellRead,
  shell_write: shellWrite,
  shell_signal: shellSignal,
  shell_close: shellClose,
  shell_list: shellList,
};
