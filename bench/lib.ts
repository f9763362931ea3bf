/**
 * Helpers shared by the benchmarks in bench/: run counts, timing, statistics,
 * the human table, the results file and spawning the built CLI.
 */
import type { Workspaces } from "../src/sdk/workspaces.js";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface Stats {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const cliPath = path.join(repoRoot, "dist", "cli.js");

/** bench/results/<name>-latest.json */
export function resultsPath(name: string): string {
  return path.join(repoRoot, "bench", "results", `${name}-latest.json`);
}

/** Whether dist/cli.js and dist/agent.js are both there. */
export function isBuilt(): boolean {
  return fs.existsSync(cliPath) && fs.existsSync(path.join(repoRoot, "dist", "agent.js"));
}

/** BENCH_RUNS as a positive integer, `fallback` when unset or empty. */
export function parseRuns(value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const runs = Number(value);
  if (!Number.isInteger(runs) || runs < 1) {
    throw new Error(`BENCH_RUNS must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return runs;
}

export function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

export function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  return n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
}

export function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    median: round(median(samples)),
    min: round(sorted[0] ?? Number.NaN),
    max: round(sorted[sorted.length - 1] ?? Number.NaN),
    samples: samples.map(round),
  };
}

export function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return [value, elapsedMs(start)];
}

export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** CPU count and kernel release of this host. */
export function hostInfo(): { cpus: number; kernel: string } {
  return { cpus: os.cpus().length, kernel: os.release() };
}

/**
 * Wall time of `node dist/cli.js <args>`; rejects unless it exits 0. The error
 * names the command as `label` (default `pyro <args>`).
 */
export function cliOnce(args: string[], label = `pyro ${args.join(" ")}`): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(process.execPath, [cliPath, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: process.env,
    });
    let output = "";
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString("utf8")).slice(-4096);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const ms = elapsedMs(start);
      if (code === 0) resolve(ms);
      else
        reject(
          new Error(
            `${label} exited ${code ?? signal}${output.trim() ? `: ${output.trim()}` : ""}`,
          ),
        );
    });
  });
}

/** Rows are full stats, or a single derived number (shown as the median only). */
export function table(rows: [string, Stats | number][]): string {
  const header = ["metric", "median", "min", "max", "samples"];
  const body = rows.map(([name, s]) =>
    typeof s === "number"
      ? [name, s.toFixed(1), "-", "-", "(derived)"]
      : [
          name,
          s.median.toFixed(1),
          s.min.toFixed(1),
          s.max.toFixed(1),
          s.samples.map((v) => v.toFixed(0)).join(" "),
        ],
  );
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  const line = (row: string[]): string =>
    row
      .map((cell, i) =>
        i === 0 || i === row.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!),
      )
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/** JSON as the repo's prettier would write it (so `prettier --check` passes), else plain. */
export async function formatJson(value: unknown, file: string): Promise<string> {
  const json = `${JSON.stringify(value, null, 2)}\n`;
  try {
    const prettier = await import("prettier");
    const config = (await prettier.resolveConfig(file)) ?? {};
    return await prettier.format(json, { ...config, filepath: file });
  } catch {
    return json;
  }
}

/** Writes `result` as JSON to `file` and to stdout, and logs where it went. */
export async function writeResults(result: unknown, file: string): Promise<void> {
  const json = await formatJson(result, file);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, json);
  process.stdout.write(json);
  log(`written to ${path.relative(process.cwd(), file) || file}`);
}

/**
 * The usual ending of a benchmark: the table on stderr, and its rows with the
 * run's context as JSON (stdout and bench/results/<name>-latest.json).
 */
export async function report(
  name: string,
  rows: [string, Stats][],
  context: Record<string, unknown>,
): Promise<void> {
  process.stderr.write(`${table(rows)}\n`);
  await writeResults(
    {
      bench: name,
      ...context,
      host: hostInfo(),
      at: new Date().toISOString(),
      results: Object.fromEntries(rows),
    },
    resultsPath(name),
  );
}

/** Runs a benchmark's main; on failure prints the error and sets exit code 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    process.stderr.write(
      `[bench] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  });
}

/**
 * On SIGINT or SIGTERM, run `first` (if given), delete every workspace labelled
 * `label=value`, and exit. Returns the function that removes the handlers.
 */
export function deleteLabelledOnSignal(
  workspaces: Workspaces,
  label: string,
  value: string,
  first?: () => void,
): () => void {
  let cleaningUp = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (cleaningUp) return;
    cleaningUp = true;
    first?.();
    log(`${signal}: deleting this run's workspaces`);
    const mine = workspaces.list().filter((w) => w.labels[label] === value);
    void Promise.allSettled(mine.map((w) => workspaces.delete(w.id))).finally(() =>
      process.exit(signal === "SIGINT" ? 130 : 143),
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
}
