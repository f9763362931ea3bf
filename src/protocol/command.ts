/**
 * How command output appears in payloads: a UTF-8 string when the bytes are
 * valid UTF-8, otherwise base64 with `*_encoding: "base64"`, so binary and
 * non-UTF-8 output survive JSON exactly.
 */
import { ErrorCodes, PyroError } from "../errors.js";
import { BOUNDS, DEFAULTS } from "../limits.js";

export type OutputEncoding = "utf-8" | "base64";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function encodeOutput(bytes: Buffer): { text: string; encoding: OutputEncoding } {
  try {
    return { text: strictUtf8.decode(bytes), encoding: "utf-8" };
  } catch {
    return { text: bytes.toString("base64"), encoding: "base64" };
  }
}

/** Validate a command and its timeout as given by a caller. */
export function prepareCommand(
  command: string | string[],
  timeoutSeconds: number | undefined,
): { argv: string[]; timeoutMs: number } {
  const seconds = timeoutSeconds ?? DEFAULTS.execTimeoutSeconds;
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > BOUNDS.execTimeoutSeconds.max) {
    throw new PyroError(
      ErrorCodes.UsageError,
      `timeout must be a positive number of seconds up to ${BOUNDS.execTimeoutSeconds.max}, got ${seconds}`,
    );
  }
  try {
    return { argv: toShellArgv(command), timeoutMs: Math.round(seconds * 1000) };
  } catch {
    throw new PyroError(ErrorCodes.UsageError, "no command given", {
      hint: "give a shell command line (a string) or an argv (a non-empty array)",
    });
  }
}

/** The output fields of a command result payload, shared by `run` and `workspace exec`. */
export interface CommandOutputFields {
  stdout: string;
  stderr: string;
  stdout_encoding: OutputEncoding;
  stderr_encoding: OutputEncoding;
  timed_out: boolean;
  truncated: boolean;
}

/** Those fields from a command's raw output (text, or base64 when not UTF-8). */
export function outputFields(output: {
  stdout: Buffer;
  stderr: Buffer;
  timed_out: boolean;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
}): CommandOutputFields {
  const stdout = encodeOutput(output.stdout);
  const stderr = encodeOutput(output.stderr);
  return {
    stdout: stdout.text,
    stderr: stderr.text,
    stdout_encoding: stdout.encoding,
    stderr_encoding: stderr.encoding,
    timed_out: output.timed_out,
    truncated: output.stdout_truncated || output.stderr_truncated,
  };
}

/** Quote one argument for sh: 'it'\''s'. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/**
 * A command as the user gave it, as the argv the guest runs: one string is a
 * shell command line (`sh -lc "…"`); several are an argv, quoted so the shell
 * passes each word through exactly.
 */
export function toShellArgv(command: string | string[]): string[] {
  const words = typeof command === "string" ? [command] : command;
  if (words.length === 0 || (words.length === 1 && words[0]!.trim() === "")) {
    throw new Error("empty command");
  }
  const line = words.length === 1 ? words[0]! : words.map(shellQuote).join(" ");
  return ["sh", "-lc", line];
}
