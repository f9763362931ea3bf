/**
 * Progress for long work (builds, pulls, boots). Only on a TTY, only on
 * stderr, so `--json` output stays exactly the payload.
 */
import type { ProgressFn } from "../index.js";

const silent: ProgressFn = () => {};

export function stderrProgress(stream: NodeJS.WriteStream = process.stderr): ProgressFn {
  if (!stream.isTTY) return silent;
  const started = Date.now();
  return (message) => {
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    stream.write(`\r\x1b[2K[pyro ${seconds}s] ${message.slice(0, (stream.columns ?? 100) - 16)}`);
    if (message.endsWith("\n")) stream.write("\n");
  };
}

/** Finish a progress line so the next output starts on a clean line. */
export function endProgress(stream: NodeJS.WriteStream = process.stderr): void {
  if (stream.isTTY) stream.write("\r\x1b[2K");
}
