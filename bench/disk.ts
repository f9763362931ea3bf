/**
 * Disk tools: what reading a stopped workspace's disk offline costs (each
 * call copies the disk to a private raw image, replays its journal and reads
 * it with debugfs). Reports medians; asserts no timing thresholds.
 *
 *   node --import tsx bench/disk.ts
 *
 * Environment: BENCH_RUNS (samples, default 5), BENCH_ENV (default debian:12),
 * PYRO_HOME (respected through the SDK). One warm workspace with a small tree
 * written by exec, then stopped; then `listDisk` (/workspace, recursive),
 * `readDisk` of one file, and `exportDisk` to a temp file.
 *
 * Human table on stderr, JSON on stdout and in bench/results/disk-latest.json.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Pyro } from "../src/sdk/pyro.js";
import {
  deleteLabelledOnSignal,
  isBuilt,
  log,
  parseRuns,
  report,
  runMain,
  stats,
  timed,
} from "./lib.js";

async function main(): Promise<void> {
  if (!isBuilt()) throw new Error("dist/ is missing: run `npm run build` first");
  process.env.PYRO_STANDBY = "0";
  const runs = parseRuns(process.env.BENCH_RUNS, 5);
  const environment = process.env.BENCH_ENV ?? "debian:12";
  const label = String(process.pid);
  const pyro = new Pyro();
  const ws = pyro.workspaces;
  const removeHandlers = deleteLabelledOnSignal(ws, "pyro-bench", label);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-bench-disk-"));
  try {
    log(`preparing ${environment} (not timed)`);
    await pyro.prepare({ environment });
    const w = await ws.create({ environment, labels: { "pyro-bench": label } });
    await ws.exec(
      w.id,
      "mkdir -p src/a src/b && for i in $(seq 1 200); do echo line $i > src/a/f$i.txt; done && seq 1 100000 > src/b/big.txt",
    );
    await ws.stop(w.id);
    const list: number[] = [];
    const read: number[] = [];
    const exported: number[] = [];
    for (let i = 0; i < runs; i++) {
      const [listing, listMs] = await timed(() => ws.listDisk(w.id, "src", { recursive: true }));
      list.push(listMs);
      read.push((await timed(() => ws.readDisk(w.id, "src/b/big.txt")))[1]);
      const file = path.join(out, `disk-${i}.ext4`);
      exported.push((await timed(() => ws.exportDisk(w.id, file)))[1]);
      fs.rmSync(file, { force: true });
      log(`run ${i + 1}: list (${listing.entries.length} entries) ${listMs.toFixed(0)} ms`);
    }
    const rows: [string, ReturnType<typeof stats>][] = [
      ["disk list src --recursive, 203 entries (ms)", stats(list)],
      ["disk read 64 KiB of a file (ms)", stats(read)],
      ["disk export, raw ext4 (ms)", stats(exported)],
    ];
    await report("disk", rows, { environment, runs });
  } finally {
    for (const w of ws.list().filter((x) => x.labels["pyro-bench"] === label))
      await ws.delete(w.id).catch(() => {});
    removeHandlers();
    fs.rmSync(out, { recursive: true, force: true });
  }
}

runMain(main);
