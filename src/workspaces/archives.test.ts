import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import * as tar from "tar";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EMPTY_TAR, isEmptyTar, packFiles, safeExtract, unsafeEntryReason } from "./archives.js";

/** Entries for a tar built by python3's tarfile module (it writes any name or type we ask for). */
type Spec =
  | { kind: "file"; name: string; data: string; mode?: number }
  | { kind: "dir"; name: string; mode?: number }
  | { kind: "symlink" | "hardlink"; name: string; target: string }
  | { kind: "chardev" | "fifo"; name: string };

const PY_WRITER = `
import io, json, sys, tarfile
out, mode = sys.argv[1], sys.argv[2]
with tarfile.open(out, mode, format=tarfile.GNU_FORMAT) as t:
    for s in json.load(sys.stdin):
        i = tarfile.TarInfo(s["name"])
        i.mode = s.get("mode", 0o644)
        if s["kind"] == "file":
            data = s["data"].encode()
            i.size = len(data)
            t.addfile(i, io.BytesIO(data))
            continue
        if s["kind"] == "dir":
            i.type = tarfile.DIRTYPE
        elif s["kind"] == "symlink":
            i.type = tarfile.SYMTYPE
            i.linkname = s["target"]
        elif s["kind"] == "hardlink":
            i.type = tarfile.LNKTYPE
            i.linkname = s["target"]
        elif s["kind"] == "chardev":
            i.type = tarfile.CHRTYPE
            i.devmajor, i.devminor = 1, 3
        elif s["kind"] == "fifo":
            i.type = tarfile.FIFOTYPE
        t.addfile(i)
`;

function writeTar(file: string, specs: Spec[], gzip = false): string {
  execFileSync("python3", ["-c", PY_WRITER, file, gzip ? "w:gz" : "w"], {
    input: JSON.stringify(specs),
    stdio: ["pipe", "ignore", "inherit"],
  });
  return file;
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Every path under `dir`, relative, sorted. */
function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      out.push(child);
      if (entry.isDirectory()) walk(child);
    }
  };
  walk("");
  return out.sort();
}

const umask = process.umask();
const withUmask = (mode: number) => mode & ~umask;

let tmp: string;
/** The extraction root sits two levels down so `..` and `../..` still land inside `tmp`. */
let outer: string;
let dest: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-archives-test-"));
  outer = path.join(tmp, "outer");
  dest = path.join(outer, "dest");
  fs.mkdirSync(dest, { recursive: true });
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("unsafeEntryReason", () => {
  it.each([
    ["a regular file", "a.txt", "File", undefined],
    ["a nested file", "a/b/c.txt", "File", undefined],
    ["an OldFile", "a.txt", "OldFile", undefined],
    ["a ContiguousFile", "a.txt", "ContiguousFile", undefined],
    ["a directory", "dir/", "Directory", undefined],
    ["a ./ prefixed file", "./a.txt", "File", undefined],
    ["a name with .. inside that stays in", "a/../b.txt", "File", undefined],
    ["an in-tree symlink", "a", "SymbolicLink", "b/c"],
    ["a symlink up one level that stays in", "d/l", "SymbolicLink", "../x"],
    ["a symlink to the root itself", "d/l", "SymbolicLink", ".."],
  ])("accepts %s", (_what, entryPath, type, linkpath) => {
    expect(unsafeEntryReason(entryPath, type, linkpath)).toBeUndefined();
  });

  it.each([
    ["../evil", "File", undefined, "path leaves the target directory"],
    ["..", "Directory", undefined, "path leaves the target directory"],
    ["a/../../evil", "File", undefined, "path leaves the target directory"],
    ["..\\evil", "File", undefined, "path leaves the target directory"],
    ["/etc/passwd", "File", undefined, "path leaves the target directory"],
    ["link", "SymbolicLink", "/etc", "symlink to an absolute path"],
    ["link", "SymbolicLink", undefined, "symlink to an absolute path"],
    ["link", "SymbolicLink", "", "symlink to an absolute path"],
    ["up", "SymbolicLink", "../../x", "symlink pointing outside the target directory"],
    ["l", "SymbolicLink", "..", "symlink pointing outside the target directory"],
    ["a/b/l", "SymbolicLink", "../../../x", "symlink pointing outside the target directory"],
    ["hard", "Link", "x", "Link entries are not extracted"],
    ["dev", "CharacterDevice", undefined, "CharacterDevice entries are not extracted"],
    ["blk", "BlockDevice", undefined, "BlockDevice entries are not extracted"],
    ["fifo", "FIFO", undefined, "FIFO entries are not extracted"],
  ])("rejects %s (%s -> %s)", (entryPath, type, linkpath, reason) => {
    expect(unsafeEntryReason(entryPath, type, linkpath)).toBe(reason);
  });
});

describe("safeExtract", () => {
  it("never writes outside the destination and reports every unsafe entry", async () => {
    const absolute = path.join(os.tmpdir(), `pyro-test-${randomBytes(6).toString("hex")}-abs`);
    const outside = path.join(tmp, "outside");
    fs.mkdirSync(outside);
    const etcProbe = `pyro-test-${randomBytes(6).toString("hex")}`;
    const archive = writeTar(path.join(tmp, "hostile.tar"), [
      { kind: "file", name: "../evil", data: "evil" },
      { kind: "file", name: absolute, data: "abs" },
      { kind: "symlink", name: "link", target: "/etc" },
      { kind: "file", name: `link/${etcProbe}`, data: "through /etc" },
      { kind: "symlink", name: "olink", target: outside },
      { kind: "file", name: "olink/passwd", data: "root::0:0" },
      { kind: "symlink", name: "up", target: "../../x" },
      { kind: "file", name: "up/pwn", data: "through up" },
      { kind: "file", name: "victim", data: "victim" },
      { kind: "hardlink", name: "hard", target: "victim" },
      { kind: "hardlink", name: "hard-out", target: "/etc/passwd" },
      { kind: "chardev", name: "chardev" },
      { kind: "fifo", name: "fifo" },
      // safe content after all of that still arrives
      { kind: "dir", name: "b", mode: 0o750 },
      { kind: "file", name: "b/c", data: "content c\n", mode: 0o755 },
      { kind: "symlink", name: "a", target: "b/c" },
      { kind: "file", name: "plain.txt", data: "plain\n", mode: 0o640 },
    ]);

    const skipped = await safeExtract(archive, dest);

    // nothing outside dest
    expect(exists(path.join(outer, "evil"))).toBe(false);
    expect(exists(absolute)).toBe(false);
    expect(exists(path.join("/etc", etcProbe))).toBe(false);
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(exists(path.join(tmp, "x"))).toBe(false);
    expect(fs.readdirSync(tmp).sort()).toEqual(["hostile.tar", "outer", "outside"]);
    expect(fs.readdirSync(outer)).toEqual(["dest"]);

    // the unsafe entries themselves are not in dest
    for (const name of ["link", "olink", "up", "hard", "hard-out", "chardev", "fifo"]) {
      const stat = exists(path.join(dest, name)) ? fs.lstatSync(path.join(dest, name)) : undefined;
      // a later file entry below a skipped symlink may create a plain directory in its place
      expect(stat === undefined || stat.isDirectory(), name).toBe(true);
    }
    expect(exists(path.join(dest, absolute.replace(/^\//, "")))).toBe(false);

    // ...and are reported with reasons
    const reasons = new Map(skipped.map((s) => [s.path, s.reason]));
    expect(reasons.get("../evil")).toBe("path leaves the target directory");
    expect(reasons.get(absolute)).toBe("path leaves the target directory");
    expect(reasons.get("link")).toBe("symlink to an absolute path");
    expect(reasons.get("olink")).toBe("symlink to an absolute path");
    expect(reasons.get("up")).toBe("symlink pointing outside the target directory");
    expect(reasons.get("hard")).toBe("Link entries are not extracted");
    expect(reasons.get("hard-out")).toBe("Link entries are not extracted");
    expect(reasons.get("chardev")).toBe("CharacterDevice entries are not extracted");
    expect(reasons.get("fifo")).toBe("FIFO entries are not extracted");
    for (const s of skipped) expect(s.reason).not.toBe("");

    // safe entries are extracted with content and mode
    expect(fs.readFileSync(path.join(dest, "b/c"), "utf8")).toBe("content c\n");
    expect(fs.statSync(path.join(dest, "b/c")).mode & 0o7777).toBe(withUmask(0o755));
    expect(fs.statSync(path.join(dest, "b")).mode & 0o7777).toBe(withUmask(0o750));
    expect(fs.readFileSync(path.join(dest, "plain.txt"), "utf8")).toBe("plain\n");
    expect(fs.statSync(path.join(dest, "plain.txt")).mode & 0o7777).toBe(withUmask(0o640));
    expect(fs.lstatSync(path.join(dest, "a")).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(path.join(dest, "a"))).toBe("b/c");
    expect(fs.readFileSync(path.join(dest, "a"), "utf8")).toBe("content c\n");
    expect(fs.readFileSync(path.join(dest, "victim"), "utf8")).toBe("victim");
    expect(fs.lstatSync(path.join(dest, "victim")).nlink).toBe(1);

    // nothing but what we expect is in dest
    for (const entry of listTree(dest)) {
      const stat = fs.lstatSync(path.join(dest, entry));
      expect(stat.isFile() || stat.isDirectory() || stat.isSymbolicLink(), entry).toBe(true);
      if (stat.isSymbolicLink()) {
        const resolved = path.resolve(
          path.dirname(path.join(dest, entry)),
          fs.readlinkSync(path.join(dest, entry)),
        );
        expect(resolved.startsWith(`${dest}/`), entry).toBe(true);
      }
    }
  });

  it("does not follow a chain of in-tree symlinks out of the destination", async () => {
    // d/l -> .. is the root itself (allowed); d/l/x -> .. would then be the root's parent.
    const archive = writeTar(path.join(tmp, "chain.tar"), [
      { kind: "dir", name: "d", mode: 0o755 },
      { kind: "symlink", name: "d/l", target: ".." },
      { kind: "symlink", name: "d/l/x", target: ".." },
      { kind: "file", name: "x/evil", data: "pwned" },
      { kind: "file", name: "d/l/x/evil2", data: "pwned" },
      { kind: "symlink", name: "s", target: "sub" },
      { kind: "file", name: "s/through", data: "through" },
    ]);
    const skipped = await safeExtract(archive, dest);
    expect(exists(path.join(outer, "evil"))).toBe(false);
    expect(exists(path.join(outer, "evil2"))).toBe(false);
    expect(fs.readdirSync(outer)).toEqual(["dest"]);
    expect(exists(path.join(dest, "x"))).toBe(true);
    expect(fs.lstatSync(path.join(dest, "x")).isSymbolicLink()).toBe(false);
    expect(exists(path.join(dest, "sub"))).toBe(false);
    // node-tar refuses to write through the symlinks; that surfaces as warnings
    expect(skipped.length).toBeGreaterThan(0);
    for (const s of skipped) expect(s.reason).toMatch(/\S/);
  });

  it("extracts a .tar.gz file, a gzip buffer and a stream", async () => {
    const specs: Spec[] = [
      { kind: "dir", name: "src", mode: 0o755 },
      { kind: "file", name: "src/main.c", data: "int main(){}\n", mode: 0o644 },
      { kind: "file", name: "run.sh", data: "#!/bin/sh\n", mode: 0o755 },
      { kind: "file", name: "../evil", data: "evil" },
    ];
    const gz = writeTar(path.join(tmp, "seed.tar.gz"), specs, true);
    expect(fs.readFileSync(gz).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));

    const sources = [
      () => gz,
      () => fs.readFileSync(gz),
      () => fs.createReadStream(gz),
      () => Readable.from([fs.readFileSync(writeTar(path.join(tmp, "plain.tar"), specs))]),
    ];
    for (const [i, source] of sources.entries()) {
      const target = path.join(dest, String(i));
      fs.mkdirSync(target);
      const skipped = await safeExtract(source(), target);
      expect(skipped).toEqual([{ path: "../evil", reason: "path leaves the target directory" }]);
      expect(listTree(target)).toEqual(["run.sh", "src", "src/main.c"]);
      expect(fs.readFileSync(path.join(target, "src/main.c"), "utf8")).toBe("int main(){}\n");
      expect(fs.statSync(path.join(target, "run.sh")).mode & 0o7777).toBe(withUmask(0o755));
    }
    expect(exists(path.join(outer, "evil"))).toBe(false);
    expect(exists(path.join(dest, "evil"))).toBe(false);
  });

  it("rejects input that is not a tar archive", async () => {
    const junk = path.join(tmp, "junk.tar");
    fs.writeFileSync(junk, randomBytes(4096));
    await expect(safeExtract(junk, dest)).rejects.toThrow();
    expect(fs.readdirSync(outer)).toEqual(["dest"]);
  });
});

describe("packFiles", () => {
  it("packs the given files, keeps symlinks as links and drops owners", async () => {
    const src = path.join(tmp, "src");
    fs.mkdirSync(path.join(src, "sub"), { recursive: true });
    fs.writeFileSync(path.join(src, "sub/file.txt"), "hello\n");
    fs.writeFileSync(path.join(src, "skipped.txt"), "not listed\n");
    fs.chmodSync(path.join(src, "sub/file.txt"), 0o751);
    fs.symlinkSync("/etc/passwd", path.join(src, "abs-link"));
    fs.symlinkSync("sub/file.txt", path.join(src, "rel-link"));
    const out = path.join(tmp, "out.tar");

    await packFiles(src, ["sub/file.txt", "abs-link", "rel-link"], out);

    const entries: {
      path: string;
      type: string;
      mode: number;
      linkpath: string;
      uname?: string;
    }[] = [];
    await tar.t({
      file: out,
      onReadEntry: (e) =>
        entries.push({
          path: e.path,
          type: e.type,
          mode: (e.mode ?? 0) & 0o7777,
          linkpath: e.linkpath ?? "",
          uname: e.uname,
        }),
    });
    expect(entries.map((e) => e.path)).toEqual(["sub/file.txt", "abs-link", "rel-link"]);
    expect(entries[0]).toMatchObject({ type: "File", mode: 0o751 });
    // symlinks are stored as links, not followed (so /etc/passwd's content is not packed)
    expect(entries[1]).toMatchObject({ type: "SymbolicLink", linkpath: "/etc/passwd" });
    expect(entries[2]).toMatchObject({ type: "SymbolicLink", linkpath: "sub/file.txt" });
    for (const e of entries) expect(e.uname ?? "").toBe("");

    // a round trip through safeExtract keeps the safe parts
    const back = path.join(tmp, "back");
    fs.mkdirSync(back);
    const skipped = await safeExtract(out, back);
    expect(skipped).toEqual([{ path: "abs-link", reason: "symlink to an absolute path" }]);
    expect(fs.readFileSync(path.join(back, "rel-link"), "utf8")).toBe("hello\n");
  });

  it("packs a whole directory with '.'", async () => {
    const src = path.join(tmp, "src");
    fs.mkdirSync(path.join(src, "a/b"), { recursive: true });
    fs.writeFileSync(path.join(src, "a/b/c.txt"), "c");
    fs.writeFileSync(path.join(src, ".hidden"), "h");
    const out = path.join(tmp, "out.tar");
    await packFiles(src, ["."], out);
    const names: string[] = [];
    await tar.t({ file: out, onReadEntry: (e) => names.push(e.path) });
    expect(names.sort()).toEqual(["./", "./.hidden", "./a/", "./a/b/", "./a/b/c.txt"]);
  });
});

describe("empty archives", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-empty-tar-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("EMPTY_TAR is a valid archive with no entries, and isEmptyTar knows it", async () => {
    const file = path.join(dir, "empty.tar");
    fs.writeFileSync(file, EMPTY_TAR);
    const names: string[] = [];
    await tar.t({ file, onReadEntry: (entry) => names.push(entry.path) });
    expect(names).toEqual([]);
    expect(isEmptyTar(file)).toBe(true);
    fs.writeFileSync(path.join(dir, "zero-length.tar"), "");
    expect(isEmptyTar(path.join(dir, "zero-length.tar"))).toBe(true);
  });

  it("isEmptyTar is false for an archive with an entry", async () => {
    fs.writeFileSync(path.join(dir, "a.txt"), "a\n");
    const file = path.join(dir, "one.tar");
    await packFiles(dir, ["a.txt"], file);
    expect(isEmptyTar(file)).toBe(false);
  });
});
