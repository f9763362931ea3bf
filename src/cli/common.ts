/** Shared pieces of the CLI commands: option parsers, the SDK instance, error handling. */
import { InvalidArgumentError } from "commander";
import { Pyro } from "../index.js";
import { endProgress, stderrProgress } from "./progress.js";
import { reportError } from "./output.js";

export function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0)
      throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

export function positiveNumber(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0)
      throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

/** Commander's way to take an option more than once. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function sdk(json: boolean): Pyro {
  return new Pyro({ progress: json ? () => {} : stderrProgress() });
}

/** Run an action; print its error (if any) and set the exit code. */
export async function act(json: boolean, fn: () => Promise<number | void>): Promise<void> {
  try {
    const code = await fn();
    endProgress();
    process.exitCode = code ?? 0;
  } catch (error) {
    endProgress();
    process.exitCode = reportError(error, json);
  }
}
