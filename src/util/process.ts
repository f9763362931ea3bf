/**
 * Running host programs: bounded capture, a timeout that always fires, and a
 * PyroError that carries the tail of stderr when the program fails.
 */
import { spawn } from "node:child_process";
import { ErrorCodes, PyroError, type ErrorCode, type Fix } from "../errors.js";
import { findExecutable } from "./which.js";

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  input?: Buffer | string;
  /** Each line of stderr (and stdout when not captured) as it arrives. */
  onLine?: (line: string) => void;
  errorCode?: ErrorCode;
  fix?: Fix;
  /**
   * Signal the program gets if this process dies (via setpriv --pdeathsig).
   * TERM lets tools such as mmdebstrap undo their mounts on the way out.
   */
  parentDeathSignal?: "TERM" | "KILL";
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

const CAPTURE_LIMIT = 4 * 1024 * 1024;

export function runCommand(
  command: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const setpriv = options.parentDeathSignal ? findExecutable("setpriv") : undefined;
  const [file, argv] = setpriv
    ? [setpriv, ["--pdeathsig", options.parentDeathSignal!, "--", command, ...args]]
    : [command, args];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outSize = 0;
    let errSize = 0;
    let partial = "";
    const emitLines = (chunk: Buffer) => {
      if (!options.onLine) return;
      partial += chunk.toString("utf8");
      const lines = partial.split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) if (line.trim()) options.onLine(line);
    };
    child.stdout.on("data", (chunk: Buffer) => {
      if (outSize < CAPTURE_LIMIT) out.push(chunk);
      outSize += chunk.length;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      errSize += chunk.length;
      err.push(chunk);
      // keep only the tail of stderr
      while (errSize > CAPTURE_LIMIT && err.length > 1) errSize -= err.shift()!.length;
      emitLines(chunk);
    });
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, options.timeoutMs);
    child.stdin.on("error", () => {});
    child.stdin.end(options.input ?? "");
    child.on("error", (error: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      reject(
        new PyroError(
          options.errorCode ?? ErrorCodes.HostRequirementMissing,
          `cannot run ${command}: ${error.message}`,
          {
            fix: options.fix ?? { kind: "run_setup" },
          },
        ),
      );
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      if (code === 0) {
        resolve({ stdout, stderr });
        return;
      }
      const why = timedOut
        ? `timed out after ${options.timeoutMs} ms`
        : `exited with ${code ?? signal}`;
      const tail = stderr.trim().split("\n").slice(-15).join("\n");
      reject(
        new PyroError(
          options.errorCode ?? ErrorCodes.Internal,
          `${command} ${why}${tail ? `:\n${tail}` : ""}`,
          {
            ...(options.fix ? { fix: options.fix } : {}),
          },
        ),
      );
    });
  });
}
