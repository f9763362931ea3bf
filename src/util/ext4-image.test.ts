/**
 * The offline ext4 reader against images built here with mke2fs -d (no VM,
 * no root): odd names, symlinks that point out, bounded reads, crafted
 * superblocks and directory entries, and nothing written but stdout.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, PyroError } from "../errors.js";
import {
  Ext4Image,
  ROOT_INODE,
  displayName,
  parseListing,
  readSuperblock,
  replayJournal,
  type Ext4Entry,
} from "./ext4-image.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-ext4-test-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const NEWLINE_NAME = "new\nline";
const BYTES_NAME = Buffer.from([0x62, 0x61, 0x64, 0x80, 0x01, 0x5c, 0x6e]); // "bad", 0x80, 0x01, "\n"
const BIG = Buffer.alloc(300_000, 7);

/** mke2fs -d from a tree: a nested dir, odd names, links out and up, a sparse giant. */
function buildImage(name: string, extra: string[] = []): string {
  const tree = path.join(dir, `${name}-tree`);
  const ws = path.join(tree, "workspace");
  fs.mkdirSync(path.join(ws, "sub", "deep"), { recursive: true });
  fs.mkdirSync(path.join(tree, "etc"));
  fs.writeFileSync(path.join(tree, "etc", "passwd"), "guest-passwd\n");
  fs.writeFileSync(path.join(ws, "hello.txt"), "hello\n");
  fs.writeFileSync(path.join(ws, "sub", "deep", "n.txt"), "nested\n");
  fs.writeFileSync(path.join(ws, NEWLINE_NAME), "nl");
  fs.writeFileSync(path.join(ws, 'sp ace"q'), "sq");
  fs.writeFileSync(Buffer.concat([Buffer.from(`${ws}/`), BYTES_NAME]), "bytes");
  fs.writeFileSync(path.join(ws, "..dots"), "dots");
  fs.writeFileSync(path.join(ws, "big.bin"), BIG);
  fs.symlinkSync("/etc/passwd", path.join(ws, "passwd-link"));
  fs.symlinkSync("../../etc", path.join(ws, "sub", "up"));
  fs.symlinkSync("a\nb", path.join(ws, "nl-link"));
  fs.symlinkSync("x".repeat(200), path.join(ws, "slow-link"));
  fs.writeFileSync(path.join(ws, "sparse"), "");
  fs.truncateSync(path.join(ws, "sparse"), 100 * 1024 ** 3);
  const image = path.join(dir, `${name}.img`);
  execFileSync("mke2fs", ["-q", "-F", "-t", "ext4", ...extra, "-d", tree, image, "64M"]);
  return image;
}

let image: string;
let disk: Ext4Image;
let work: string;

beforeAll(() => {
  image = buildImage("main");
  work = fs.mkdtempSync(path.join(dir, "work-"));
  disk = new Ext4Image(image, work);
});

function sha(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

async function entry(...components: string[]): Promise<Ext4Entry> {
  const found = await disk.lookup(components);
  if (!found || found.rest.length) throw new Error(`no ${components.join("/")}`);
  return found.entry;
}

async function failure(promise: Promise<unknown>): Promise<PyroError> {
  try {
    await promise;
  } catch (error) {
    return error as PyroError;
  }
  throw new Error("did not fail");
}

describe("Ext4Image", () => {
  it("lists a directory with every name exactly, odd bytes included, without . and ..", async () => {
    const ws = await entry("workspace");
    const listing = (await disk.listDirs([ws.inode])).get(ws.inode)!;
    expect(listing.truncated).toBe(false);
    const names = listing.entries.map((e) => e.name);
    expect(names.map((n) => n.toString("utf8")).sort()).toEqual(
      [
        "..dots",
        "big.bin",
        "hello.txt",
        NEWLINE_NAME,
        "nl-link",
        "passwd-link",
        "slow-link",
        'sp ace"q',
        "sparse",
        "sub",
        BYTES_NAME.toString("utf8"),
      ].sort(),
    );
    expect(names.some((n) => n.equals(BYTES_NAME))).toBe(true);
    const byName = new Map(listing.entries.map((e) => [displayName(e.name), e]));
    expect(byName.get("big.bin")).toMatchObject({ type: "file", size: BIG.length });
    expect(byName.get("sub")).toMatchObject({ type: "directory" });
    expect(byName.get("passwd-link")).toMatchObject({ type: "symlink", size: 11 });
    expect(byName.get("sparse")!.size).toBe(100 * 1024 ** 3);
    expect(displayName(BYTES_NAME)).toBe("bad\\x80\\x01\\x5cn");
    expect(byName.has("bad\\x80\\x01\\x5cn")).toBe(true);
  });

  it("walks paths by inode and stops at a symlink instead of following it", async () => {
    expect((await entry("workspace", "sub", "deep", "n.txt")).type).toBe("file");
    const through = await disk.lookup(["workspace", "sub", "up", "passwd"]);
    expect(through!.entry.type).toBe("symlink");
    expect(through!.rest).toEqual(["passwd"]);
    expect(await disk.lookup(["workspace", "missing"])).toBeUndefined();
    const past = await disk.lookup(["workspace", "hello.txt", "x"]);
    expect(past).toMatchObject({ entry: { type: "file" }, rest: ["x"] });
    // A name that is not UTF-8 is found by its bytes' escapes too.
    expect((await entry("workspace", "bad\\x80\\x01\\x5cn")).type).toBe("file");
    expect((await entry("workspace", NEWLINE_NAME)).type).toBe("file");
    expect((await disk.lookup([]))!.entry.inode).toBe(ROOT_INODE);
  });

  it("reads symlink targets as stored (fast and slow), never what they point at", async () => {
    const links = await Promise.all(
      ["passwd-link", "nl-link", "slow-link"].map((n) => entry("workspace", n)),
    );
    const targets = await disk.readLinks(links);
    expect(links.map((l) => targets.get(l.inode)?.toString())).toEqual([
      "/etc/passwd",
      "a\nb",
      "x".repeat(200),
    ]);
  });

  it("reads files up to a bound, sparse giants included, and only regular files", async () => {
    expect((await disk.read(await entry("workspace", "hello.txt"), 1000)).toString()).toBe(
      "hello\n",
    );
    const big = await disk.read(await entry("workspace", "big.bin"), 1000);
    expect(big).toEqual(BIG.subarray(0, 1000));
    expect(await disk.read(await entry("workspace", "big.bin"), 10_000_000)).toEqual(BIG);
    const started = Date.now();
    const sparse = await disk.read(await entry("workspace", "sparse"), 4096);
    expect(sparse).toEqual(Buffer.alloc(4096));
    expect(Date.now() - started).toBeLessThan(10_000);
    await expect(disk.read(await entry("workspace", "sub"), 10)).rejects.toThrow(
      /not a regular file/,
    );
  });

  it("writes nothing: the image is unchanged and its work directory left empty", async () => {
    const before = sha(image);
    await disk.listDirs([ROOT_INODE]);
    await disk.read(await entry("etc", "passwd"), 100);
    expect(sha(image)).toBe(before);
    expect(fs.readdirSync(work)).toEqual([]);
  });

  it("does not let crafted names escape their line or their directory", async () => {
    // Without metadata checksums, directory entries can be edited in place.
    const crafted = buildImage("crafted", ["-O", "^metadata_csum"]);
    const bytes = fs.readFileSync(crafted);
    const patch = (from: string, to: string) => {
      const at = bytes.indexOf(Buffer.from(from));
      expect(at, from).toBeGreaterThan(0);
      Buffer.from(to).copy(bytes, at);
    };
    patch("hello.txt", "hel/o.txt");
    patch("..dots", "..\0\0\0\0");
    fs.writeFileSync(crafted, bytes);
    const craftedDisk = new Ext4Image(crafted, work);
    const ws = (await craftedDisk.lookup(["workspace"]))!.entry;
    const names = (await craftedDisk.listDirs([ws.inode]))
      .get(ws.inode)!
      .entries.map((e) => displayName(e.name));
    expect(names).toContain("hel/o.txt");
    expect(names.filter((n) => n === ".." || n === ".")).toEqual([]);
    expect(await craftedDisk.lookup(["workspace", "hel", "o.txt"])).toBeUndefined();
  });

  it("parses debugfs lines for empty slots, deleted marks and large inode numbers", () => {
    const text = [
      "      2   40755 (2)      0      0    4096  2-Dec-2026 10:08 .",
      "      0       0 (1)      0      0       0                   ",
      " 1234567  100600 (1)   1000   1000      12 12-Jan-2025 09:01  lead space",
      "<     15> 100644 (1)      0      0       1  2-Dec-2026 10:07 gone",
    ].join("\n");
    expect(parseListing(text).map((e) => [e.inode, displayName(e.name), e.mode, e.size])).toEqual([
      [1234567, " lead space", 0o100600, 12],
      [15, "gone", 0o100644, 1],
    ]);
  });
});

describe("superblock checks and journal replay", () => {
  it("refuses what is not ext4", () => {
    const junk = path.join(dir, "junk.img");
    fs.writeFileSync(junk, Buffer.alloc(8192, 0x41));
    expect(() => readSuperblock(junk)).toThrow(PyroError);
    const error = (() => {
      try {
        readSuperblock(junk);
      } catch (e) {
        return e as PyroError;
      }
    })();
    expect(error?.code).toBe(ErrorCodes.DiskUnreadable);
  });

  it("replays only when the journal needs it, and never an external journal", async () => {
    const copy = path.join(dir, "replay.img");
    fs.copyFileSync(image, copy);
    expect(readSuperblock(copy)).toEqual({ needsRecovery: false, externalJournal: false });
    expect(await replayJournal(copy, work)).toBe(false);
    // Mark it as needing recovery, as a guest stopped without unmounting leaves it.
    execFileSync("debugfs", ["-w", "-R", "feature needs_recovery", copy], { stdio: "ignore" });
    expect(readSuperblock(copy).needsRecovery).toBe(true);
    expect(await replayJournal(copy, work)).toBe(true);
    expect(readSuperblock(copy).needsRecovery).toBe(false);
    // A journal UUID means a journal device elsewhere, which e2fsck would look for on the host.
    execFileSync("debugfs", ["-w", "-R", "feature needs_recovery", copy], { stdio: "ignore" });
    const bytes = fs.readFileSync(copy);
    bytes.fill(0x42, 1024 + 0xd0, 1024 + 0xe0);
    fs.writeFileSync(copy, bytes);
    expect(readSuperblock(copy).externalJournal).toBe(true);
    const error = await failure(replayJournal(copy, work));
    expect(error.code).toBe(ErrorCodes.DiskUnreadable);
    expect(error.message).toMatch(/journal is on another device/);
  });

  it("says so when debugfs cannot open an image", async () => {
    const junk = path.join(dir, "junk2.img");
    fs.writeFileSync(junk, Buffer.alloc(8192));
    const error = await failure(new Ext4Image(junk, work).listDirs([ROOT_INODE]));
    expect(error.code).toBe(ErrorCodes.DiskUnreadable);
  });
});
