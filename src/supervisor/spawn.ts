/**
 * Starting a workspace's supervisor as a detached process and waiting for
 * its one-line verdict: ready, or why not.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import type { PyroPaths } from "../config/paths.js";
import { ErrorCodes, PyroError, type ErrorCode } from "../errors.js";
import { locateBundle } from "../util/bundles.js";
import type { SupervisorReady } from "./workspace-supervisor.js";

const READY_TIMEOUT_MS = 600_000;

export function locateSupervisor(): string {
  return locateBundle(
    "supervisor.js",
    process.env.PYRO_SUPERVISOR_BUNDLE,
    "the workspace supervisor",
  );
}

/**
 * Spawn the supervisor for workspace `id`; resolves once its VM answers,
 * rejects with its error. With `gate`, the process starts at once but reads
 * the workspace's record only once `gate` resolves (it dies if it rejects,
 * and this rejects with that error): its start-up overlaps the caller's work.
 */
export async function startSupervisor(
  paths: PyroPaths,
  id: string,
  logFile: string,
  gate?: Promise<unknown>,
): Promise<void> {
  const log = fs.openSync(logFile, "a", 0o600);
  const child = spawn(
    process.execPath,
    [locateSupervisor(), JSON.stringify(paths), id, ...(gate ? ["--after-go"] : [])],
    { detached: true, stdio: [gate ? "pipe" : "ignore", "pipe", log] },
  );
  fs.closeSync(log);
  // Listening from the start: a supervisor that dies while the gate is shut is seen.
  const answered = new Promise<SupervisorReady>((resolve) => {
    let buffer = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve({
        ok: false,
        error: {
          code: ErrorCodes.VmBootTimeout,
          message: "the workspace VM did not become ready in time",
        },
      });
    }, READY_TIMEOUT_MS);
    child.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      const newline = buffer.indexOf("\n");
      if (newline === -1) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buffer.slice(0, newline)) as SupervisorReady);
      } catch {
        resolve({
          ok: false,
          error: { code: ErrorCodes.Internal, message: "the supervisor answered garbage" },
        });
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({
        ok: false,
        error: {
          code: ErrorCodes.VmBootFailed,
          message: `the workspace supervisor exited (${signal ?? code}): ${tailOf(logFile)}`,
        },
      });
    });
  });
  if (gate) {
    child.stdin!.on("error", () => {});
    try {
      await gate;
    } catch (error) {
      child.kill("SIGKILL");
      child.stdout!.destroy();
      child.unref();
      throw error;
    }
    child.stdin!.end("go\n");
  }
  const verdict = await answered;
  child.stdout!.destroy();
  child.removeAllListeners("exit");
  child.unref();
  if (!verdict.ok) {
    const error = verdict.error;
    throw new PyroError(
      (error?.code as ErrorCode | undefined) ?? ErrorCodes.VmBootFailed,
      error?.message ?? "the workspace did not start",
      {
        ...(error?.hint ? { hint: error.hint } : {}),
        ...(error?.fix || !error?.hint ? { fix: error?.fix ?? { kind: "run_doctor" } } : {}),
      },
    );
  }
}

function tailOf(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").trim().split("\n").slice(-5).join(" | ").slice(-2000);
  } catch {
    return "no log";
  }
}
