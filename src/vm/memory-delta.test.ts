import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  applyDelta,
  changedRuns,
  findRamMapping,
  saveDelta,
  type RamMapping,
} from "./memory-delta.js";

const PAGE = 4096;
const PRESENT = 0x8000_0000;
const SWAPPED = 0x4000_0000;
const FILE = 0x2000_0000;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-delta-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A pagemap file for `flags` (high 32 bits of each entry), the mapping starting at page `first`. */
function pagemapFile(first: number, flags: number[]): string {
  const buffer = Buffer.alloc((first + flags.length) * 8);
  flags.forEach((high, i) => buffer.writeUInt32LE(high >>> 0, (first + i) * 8 + 4));
  const file = path.join(dir, "pagemap");
  fs.writeFileSync(file, buffer);
  return file;
}

/** A stand-in for /proc/PID/mem: `pages` pages at page `first`, page i filled with `fill(i)`. */
function memoryFile(first: number, pages: number, fill: (page: number) => number): string {
  const file = path.join(dir, `mem-${fill(0)}`);
  const buffer = Buffer.alloc((first + pages) * PAGE);
  for (let i = 0; i < pages; i++) buffer.fill(fill(i), (first + i) * PAGE, (first + i + 1) * PAGE);
  fs.writeFileSync(file, buffer);
  return file;
}

describe("changedRuns", () => {
  it("keeps present anonymous and swapped pages, in runs, and leaves file pages and holes", () => {
    const flags = [
      PRESENT | FILE, // the file's page, read
      PRESENT, // written: anonymous copy
      PRESENT,
      0, // never touched
      SWAPPED, // written, then swapped out
      PRESENT | FILE,
      PRESENT,
    ];
    const mapping: RamMapping = { start: 3 * PAGE, pages: flags.length };
    expect(changedRuns(pagemapFile(3, flags), mapping)).toEqual([
      [1, 2],
      [4, 1],
      [6, 1],
    ]);
  });

  it("joins a run across the chunks the pagemap is read in (1 MiB: 131,072 pages)", () => {
    const perChunk = (1024 * 1024) / 8;
    const flags = new Array<number>(perChunk + 2).fill(PRESENT | FILE);
    flags[0] = PRESENT;
    for (let page = perChunk - 2; page < perChunk + 2; page++) flags[page] = PRESENT;
    const mapping: RamMapping = { start: 5 * PAGE, pages: flags.length };
    expect(changedRuns(pagemapFile(5, flags), mapping)).toEqual([
      [0, 1],
      [perChunk - 2, 4],
    ]);
  });

  it("refuses a short pagemap", () => {
    expect(() => changedRuns(pagemapFile(0, [PRESENT]), { start: 0, pages: 4 })).toThrow(
      /unexpected end/,
    );
  });
});

describe("saveDelta and applyDelta", () => {
  it("carry exactly the changed pages over the target's own", () => {
    const mapping: RamMapping = { start: 2 * PAGE, pages: 6 };
    const source = memoryFile(2, 6, (i) => 0x10 + i);
    const target = memoryFile(2, 6, () => 0xee);
    const delta = path.join(dir, "delta");
    saveDelta(
      source,
      mapping,
      [
        [0, 2],
        [4, 1],
      ],
      delta,
    );
    expect(fs.statSync(delta).mode & 0o777).toBe(0o600);
    expect(applyDelta(delta, target, mapping)).toBe(3);
    const after = fs.readFileSync(target);
    const pageByte = (i: number) => after[(2 + i) * PAGE + 17];
    expect([0, 1, 2, 3, 4, 5].map(pageByte)).toEqual([0x10, 0x11, 0xee, 0xee, 0x14, 0xee]);
    // Nothing before the mapping is touched.
    expect(after.subarray(0, 2 * PAGE).every((b) => b === 0)).toBe(true);
  });

  it("moves runs longer than one chunk", () => {
    const pages = 600; // > 256 pages per 1 MiB chunk
    const mapping: RamMapping = { start: 0, pages };
    const source = memoryFile(0, pages, (i) => i % 251);
    const target = memoryFile(0, pages, () => 0xff);
    const delta = path.join(dir, "delta");
    saveDelta(source, mapping, [[0, pages]], delta);
    applyDelta(delta, target, mapping);
    expect(fs.readFileSync(target).equals(fs.readFileSync(source))).toBe(true);
  });

  it("refuses a damaged or foreign delta and writes nothing", () => {
    const mapping: RamMapping = { start: 0, pages: 4 };
    const source = memoryFile(0, 4, (i) => i + 1);
    const target = memoryFile(0, 4, () => 0xaa);
    const before = fs.readFileSync(target);
    const delta = path.join(dir, "delta");
    saveDelta(source, mapping, [[1, 2]], delta);
    const good = fs.readFileSync(delta);

    fs.writeFileSync(delta, good.subarray(0, good.length - 1));
    expect(() => applyDelta(delta, target, mapping)).toThrow(/truncated/);
    fs.writeFileSync(delta, Buffer.concat([good, Buffer.alloc(1)]));
    expect(() => applyDelta(delta, target, mapping)).toThrow(/trailing/);
    fs.writeFileSync(delta, Buffer.concat([Buffer.from("NOTADLTA"), good.subarray(8)]));
    expect(() => applyDelta(delta, target, mapping)).toThrow(/not a memory delta/);
    // A run past the end of the target's memory.
    expect(() => applyDelta(delta, target, { start: 0, pages: 2 })).toThrow();
    expect(fs.readFileSync(target).equals(before)).toBe(true);
  });
});

describe("findRamMapping", () => {
  it("finds a file this process maps, and refuses one it does not", () => {
    // Node maps its own executable: a real /proc/self/maps entry of a real file.
    const exe = fs.realpathSync(process.execPath);
    const mapping = findRamMapping(process.pid, exe);
    expect(mapping.pages).toBeGreaterThan(0);
    expect(() => findRamMapping(process.pid, path.join(dir, "none"))).toThrow();
    const other = path.join(dir, "other");
    fs.writeFileSync(other, "x");
    expect(() => findRamMapping(process.pid, other)).toThrow(/does not map/);
  });
});
