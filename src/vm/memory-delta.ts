/**
 * A memory delta: the pages of a VM's RAM that differ from the file its RAM
 * is a copy-on-write mapping of (the warm image's memory.ram). A restored VM
 * has written to a few tens of MiB of its 1 GiB; everything else is still
 * the file's. So a fork copies only those pages (read from QEMU's
 * /proc/PID/mem, found with /proc/PID/pagemap) and writes them into a new
 * QEMU that maps the same file, instead of streaming every non-zero page
 * through QEMU's migration (~180 MB/s under emulation: seconds).
 *
 * Reading or writing another process's memory needs ptrace access to it:
 * each side is done by the supervisor that started that QEMU (its parent,
 * which Yama's default scope allows). Anything unexpected throws, and the
 * caller falls back to a full copy.
 *
 * The file: "PYRODLT1", then u32 page size, u32 run count, then per run
 * u64 first page and u32 page count (runs ascending, not touching), then
 * the pages of every run in order.
 */
import fs from "node:fs";

const MAGIC = Buffer.from("PYRODLT1");
const PAGE = 4096;
/** Bytes moved per read or write: small enough that no big buffer is faulted in. */
const CHUNK = 1024 * 1024;
const RUN_BYTES = 12;

/** Where a VM's RAM is mapped in its QEMU process. */
export interface RamMapping {
  start: number;
  pages: number;
}

/** A run of changed pages: [first page, count]. */
export type PageRun = [number, number];

/**
 * The mapping of `file` in process `pid` (its whole length, at offset 0),
 * checked to be that very file (same inode), not one since put in its place.
 */
export function findRamMapping(pid: number, file: string): RamMapping {
  const inode = fs.statSync(file).ino;
  for (const line of fs.readFileSync(`/proc/${pid}/maps`, "utf8").split("\n")) {
    // start-end perms offset dev inode path
    const match = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ (\d+)\s+(.*)$/.exec(line);
    if (!match || match[5] !== file) continue;
    if (Number(match[4]) !== inode) throw new Error(`${file} was replaced since the VM mapped it`);
    if (parseInt(match[3]!, 16) !== 0) throw new Error(`${file} is mapped at an offset`);
    const start = parseInt(match[1]!, 16);
    const end = parseInt(match[2]!, 16);
    return { start, pages: (end - start) / PAGE };
  }
  throw new Error(`process ${pid} does not map ${file}`);
}

/**
 * Which pages of a private file mapping are the process's own: present and
 * anonymous (written, so copied on write) or swapped out. The others read
 * as the file does. `pagemap` is /proc/PID/pagemap (8 bytes per page).
 */
export function changedRuns(pagemap: string, mapping: RamMapping): PageRun[] {
  const runs: PageRun[] = [];
  // In chunks: the whole map is 2 MB per GiB of guest RAM.
  const entries = Buffer.allocUnsafe(CHUNK);
  const fd = fs.openSync(pagemap, "r");
  try {
    for (let base = 0; base < mapping.pages; base += CHUNK / 8) {
      const count = Math.min(mapping.pages - base, CHUNK / 8);
      readInto(fd, entries, count * 8, (mapping.start / PAGE + base) * 8);
      for (let i = 0; i < count; i++) {
        const high = entries.readUInt32LE(i * 8 + 4);
        const present = (high & 0x8000_0000) !== 0;
        const swapped = (high & 0x4000_0000) !== 0;
        const fileBacked = (high & 0x2000_0000) !== 0;
        if (!((present && !fileBacked) || swapped)) continue;
        const page = base + i;
        const last = runs[runs.length - 1];
        if (last && last[0] + last[1] === page) last[1]++;
        else runs.push([page, 1]);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return runs;
}

/** Write the changed pages of `mapping` (read from `memory`, /proc/PID/mem) to `out`. */
export function saveDelta(memory: string, mapping: RamMapping, runs: PageRun[], out: string): void {
  const header = Buffer.alloc(MAGIC.length + 8 + runs.length * RUN_BYTES);
  MAGIC.copy(header);
  header.writeUInt32LE(PAGE, MAGIC.length);
  header.writeUInt32LE(runs.length, MAGIC.length + 4);
  runs.forEach(([first, count], i) => {
    const at = MAGIC.length + 8 + i * RUN_BYTES;
    header.writeBigUInt64LE(BigInt(first), at);
    header.writeUInt32LE(count, at + 8);
  });
  const source = fs.openSync(memory, "r");
  const target = fs.openSync(out, "w", 0o600);
  try {
    fs.writeSync(target, header);
    copyRuns(runs, (page, bytes, buffer) => {
      readInto(source, buffer, bytes, mapping.start + page * PAGE);
      fs.writeSync(target, buffer, 0, bytes);
    });
  } finally {
    fs.closeSync(source);
    fs.closeSync(target);
  }
}

/** Write the pages of delta file `file` into `mapping` of `memory` (/proc/PID/mem). */
export function applyDelta(file: string, memory: string, mapping: RamMapping): number {
  const source = fs.openSync(file, "r");
  const target = fs.openSync(memory, "r+");
  try {
    const runs = readRuns(source, fs.fstatSync(source).size, mapping.pages);
    let offset = MAGIC.length + 8 + runs.length * RUN_BYTES;
    let pages = 0;
    copyRuns(runs, (page, bytes, buffer) => {
      readInto(source, buffer, bytes, offset);
      offset += bytes;
      const written = fs.writeSync(target, buffer, 0, bytes, mapping.start + page * PAGE);
      if (written !== bytes) throw new Error("short write to the VM's memory");
      pages += bytes / PAGE;
    });
    return pages;
  } finally {
    fs.closeSync(source);
    fs.closeSync(target);
  }
}

/** The runs of a delta file, checked against its size and a mapping of `pages` pages. */
function readRuns(fd: number, size: number, pages: number): PageRun[] {
  const head = Buffer.alloc(MAGIC.length + 8);
  readInto(fd, head, head.length, 0);
  if (!head.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error("not a memory delta");
  if (head.readUInt32LE(MAGIC.length) !== PAGE)
    throw new Error("memory delta of another page size");
  const count = head.readUInt32LE(MAGIC.length + 4);
  if (count > pages) throw new Error("memory delta has more runs than the VM has pages");
  const table = Buffer.alloc(count * RUN_BYTES);
  readInto(fd, table, table.length, head.length);
  const runs: PageRun[] = [];
  let end = 0;
  let total = 0;
  for (let i = 0; i < count; i++) {
    const first = Number(table.readBigUInt64LE(i * RUN_BYTES));
    const length = table.readUInt32LE(i * RUN_BYTES + 8);
    if (length === 0 || first < end || first + length > pages)
      throw new Error("memory delta runs are out of order or outside the VM's memory");
    runs.push([first, length]);
    end = first + length;
    total += length;
  }
  if (size !== head.length + table.length + total * PAGE)
    throw new Error("memory delta is truncated or has trailing bytes");
  return runs;
}

/** Call `move` for every chunk of every run: (first page, bytes, a reused buffer). */
function copyRuns(runs: PageRun[], move: (page: number, bytes: number, buffer: Buffer) => void) {
  const buffer = Buffer.allocUnsafe(CHUNK);
  for (const [first, count] of runs) {
    for (let done = 0; done < count;) {
      const pages = Math.min(count - done, CHUNK / PAGE);
      move(first + done, pages * PAGE, buffer);
      done += pages;
    }
  }
}

function readInto(fd: number, buffer: Buffer, bytes: number, position: number): void {
  for (let got = 0; got < bytes;) {
    const n = fs.readSync(fd, buffer, got, bytes - got, position + got);
    if (n <= 0) throw new Error("unexpected end of file");
    got += n;
  }
}
