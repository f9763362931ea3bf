/**
 * CLI output helpers: `--json` prints exactly the payload on stdout; human
 * output goes to stdout for results and stderr for notes. Errors map to exit
 * codes once, here.
 */
import { exitCodeFor, toPyroError } from "../index.js";
import { cliHint } from "./fixes.js";

export function printJson(payload: unknown): void {
  process.stdout.write(`${JSON.stringify(payload, null, 2)}\n`);
}

/** A file read's content on stdout (its bytes as they are); on stderr, where it was cut and how to read more. */
export function printFileRead(
  read: { content: string; encoding: string; truncated: boolean; bytes_read: number; size: number },
  options: { contentOnly?: boolean; more: string },
): void {
  process.stdout.write(
    read.encoding === "utf-8" ? read.content : Buffer.from(read.content, "base64"),
  );
  if (!options.contentOnly && read.truncated) {
    process.stderr.write(
      `\npyro: showing ${read.bytes_read} of ${read.size} bytes; ${options.more}\n`,
    );
  }
}

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r) =>
      r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  "),
    )
    .join("\n");
}

/** Print an error the way the contract says (one `error:` line plus a hint) and return the exit code. */
export function reportError(error: unknown, json: boolean): number {
  const pyroError = toPyroError(error);
  const hint = cliHint(pyroError);
  if (json) {
    printJson({ error: { ...pyroError.toJSON(), ...(hint === undefined ? {} : { hint }) } });
  } else {
    process.stderr.write(`error: ${pyroError.message}\n`);
    if (hint) process.stderr.write(`hint: ${hint}\n`);
  }
  if (process.env.PYRO_DEBUG && pyroError.stack) process.stderr.write(`${pyroError.stack}\n`);
  return exitCodeFor(pyroError);
}
