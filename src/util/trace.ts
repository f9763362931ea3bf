/**
 * Stage timings for performance work: with PYRO_TRACE=1, `trace("label")`
 * writes the wall-clock time (ms since the epoch, so lines from the CLI and
 * the supervisor interleave) and the label to stderr. Off by default; costs
 * one env lookup.
 */
const enabled = process.env.PYRO_TRACE === "1";

export function trace(label: string): void {
  if (enabled) process.stderr.write(`[pyro-trace ${Date.now()} ${process.pid}] ${label}\n`);
}
