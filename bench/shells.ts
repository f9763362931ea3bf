/**
 * Shells and secrets: how long until a shell shows its prompt, what a
 * write → read round trip costs, and what redaction adds to an exec.
 * Reports medians; asserts no timing thresholds.
 *
 *   node --import tsx bench/shells.ts
 *
 * Environment: BENCH_RUNS (samples, default 5), BENCH_ENV (default debian:12),
 * PYRO_HOME (respected through the SDK).
 *
 * Everything goes through the SDK, on warm workspaces (`pyro.prepare` first,
 * not timed; standby VMs off, so each create restores its own VM):
 *   1. open → prompt, first shell: on a fresh workspace (the guest loads its
 *      terminal module then), `openShell` and then raw reads (no wait) until
 *      the prompt ("# ") is there; and the bare `openShell` call;
 *   2. open → prompt, next shell: the same, on a workspace that has opened one;
 *   3. round trip: `writeShell("echo rt-N")` and raw reads with
 *      wait_for_idle_ms 0 from the cursor until "rt-N" comes back on its own
 *      line; and the bare write and read calls;
 *   4. exec `true` → result on a workspace with two secrets against one
 *      without (the host redacts every exec's output when there are secrets).
 *
 * Workspaces carry the label pyro-bench=<pid> and are deleted at the end,
 * on error, and on SIGINT/SIGTERM.
 *
 * Human table on stderr, JSON on stdout and in bench/results/shells-latest.json.
 */
import { Pyro } from "../src/sdk/pyro.js";
import {
  deleteLabelledOnSignal,
  elapsedMs,
  isBuilt,
  log,
  parseRuns,
  report,
  runMain,
  stats,
  timed,
} from "./lib.js";

const PROMPT = /[#$] $/;

async function main(): Promise<void> {
  if (!isBuilt()) throw new Error("dist/ is missing: run `npm run build` first");
  process.env.PYRO_STANDBY = "0";
  const runs = parseRuns(process.env.BENCH_RUNS, 5);
  const environment = process.env.BENCH_ENV ?? "debian:12";
  const label = String(process.pid);
  const pyro = new Pyro();
  const ws = pyro.workspaces;
  const removeHandlers = deleteLabelledOnSignal(ws, "pyro-bench", label);
  const mine = () => ws.list().filter((w) => w.labels["pyro-bench"] === label);
  try {
    log(`preparing ${environment} (not timed)`);
    await pyro.prepare({ environment });
    const create = (extra: object = {}) =>
      ws.create({ environment, labels: { "pyro-bench": label }, ...extra });

    /** openShell, then raw reads until the prompt: [open → prompt, open alone]. */
    const openToPrompt = async (id: string): Promise<[number, number]> => {
      const start = process.hrtime.bigint();
      const [shell, openMs] = await timed(() => ws.openShell(id));
      let text = "";
      let cursor = 0;
      while (!PROMPT.test(text)) {
        if (elapsedMs(start) > 30_000)
          throw new Error(`no prompt after 30 s: ${JSON.stringify(text)}`);
        const read = await ws.readShell(id, shell.shell_id, { cursor });
        text += read.text;
        cursor = read.next_cursor;
      }
      return [elapsedMs(start), openMs];
    };

    const first: number[] = [];
    const firstOpen: number[] = [];
    const next: number[] = [];
    const nextOpen: number[] = [];
    for (let i = 0; i < runs; i++) {
      const w = await create();
      const [total, open] = await openToPrompt(w.id);
      first.push(total);
      firstOpen.push(open);
      const [again, againOpen] = await openToPrompt(w.id);
      next.push(again);
      nextOpen.push(againOpen);
      await ws.delete(w.id);
      log(`open → prompt: first ${total.toFixed(0)} ms, next ${again.toFixed(0)} ms`);
    }

    const w = await create({
      secrets: { TOKEN_A: "bench-secret-aaaa", TOKEN_B: "bench-secret-bbbb" },
    });
    const plain = await create();
    const shell = await ws.openShell(w.id);
    let cursor = (await ws.readShell(w.id, shell.shell_id, { waitForIdleMs: 300 })).next_cursor;
    const roundTrip: number[] = [];
    const writeCall: number[] = [];
    const readCall: number[] = [];
    for (let i = 0; i < runs * 2; i++) {
      const marker = `rt-${i}`;
      const start = process.hrtime.bigint();
      const [, writeMs] = await timed(() => ws.writeShell(w.id, shell.shell_id, `echo ${marker}`));
      let text = "";
      // The echo of the input, then the output on a line of its own (after bash's own \r).
      while (!new RegExp(`[\\r\\n]${marker}\\r\\n`).test(text)) {
        if (elapsedMs(start) > 30_000)
          throw new Error(`no ${marker} after 30 s: ${JSON.stringify(text)}`);
        const [read, readMs] = await timed(() =>
          ws.readShell(w.id, shell.shell_id, { cursor, waitForIdleMs: 0 }),
        );
        readCall.push(readMs);
        text += read.text;
        cursor = read.next_cursor;
      }
      roundTrip.push(elapsedMs(start));
      writeCall.push(writeMs);
    }

    const execWith: number[] = [];
    const execWithout: number[] = [];
    for (let i = 0; i < runs * 2; i++) {
      execWith.push((await timed(() => ws.exec(w.id, "true")))[1]);
      execWithout.push((await timed(() => ws.exec(plain.id, "true")))[1]);
    }

    const rows: [string, ReturnType<typeof stats>][] = [
      ["open → prompt, first shell (ms)", stats(first)],
      ["openShell call, first shell (ms)", stats(firstOpen)],
      ["open → prompt, next shell (ms)", stats(next)],
      ["openShell call, next shell (ms)", stats(nextOpen)],
      ["write → read round trip, idle 0 (ms)", stats(roundTrip)],
      ["writeShell call (ms)", stats(writeCall)],
      ["readShell call, no wait (ms)", stats(readCall)],
      ["exec true, 2 secrets (ms)", stats(execWith)],
      ["exec true, no secrets (ms)", stats(execWithout)],
    ];
    await report("shells", rows, { environment, runs });
  } finally {
    for (const w of mine()) await ws.delete(w.id).catch(() => {});
    removeHandlers();
  }
}

runMain(main);
