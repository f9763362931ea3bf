import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as tar from "tar";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { diffTrees, readTree, type TreeEntry } from "./diff.js";
import { planPatch } from "./patch.js";

let tmp: string;
let counter = 0;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-diff-test-"));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

type FileSpec = string | Buffer | { data: string | Buffer; mode?: number } | { symlink: string };

/** Make a directory from a spec and return it as a tar archive buffer (as packFiles would). */
async function tarOf(files: Record<string, FileSpec>): Promise<Buffer> {
  const dir = path.join(tmp, `tree-${counter++}`);
  fs.mkdirSync(dir);
  for (const [name, spec] of Object.entries(files)) {
    const file = path.join(dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (typeof spec === "object" && "symlink" in spec) {
      fs.symlinkSync(spec.symlink, file);
      continue;
    }
    const data = typeof spec === "string" || Buffer.isBuffer(spec) ? spec : spec.data;
    fs.writeFileSync(file, data);
    const mode = typeof spec === "object" && !Buffer.isBuffer(spec) ? spec.mode : undefined;
    fs.chmodSync(file, mode ?? 0o644);
  }
  const out = `${dir}.tar`;
  await tar.c({ cwd: dir, file: out, portable: true, follow: false }, ["."]);
  return fs.readFileSync(out);
}

async function treeOf(files: Record<string, FileSpec>): Promise<Map<string, TreeEntry>> {
  return readTree(await tarOf(files));
}

async function diffOf(before: Record<string, FileSpec>, after: Record<string, FileSpec>) {
  return await diffTrees(await treeOf(before), await treeOf(after));
}

describe("readTree", () => {
  it("reads files, directories and symlinks with normalized paths", async () => {
    const tree = await treeOf({
      "a.txt": { data: "hello\n", mode: 0o755 },
      "sub/deep/b.txt": "b",
      "sub/link": { symlink: "deep/b.txt" },
    });
    expect([...tree.keys()].sort()).toEqual([
      "a.txt",
      "sub",
      "sub/deep",
      "sub/deep/b.txt",
      "sub/link",
    ]);
    const a = tree.get("a.txt")!;
    expect(a).toMatchObject({ type: "file", mode: 0o755, size: 6 });
    expect(a.content?.toString()).toBe("hello\n");
    expect(a.sha256).toBe("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    expect(tree.get("sub")?.type).toBe("directory");
    expect(tree.get("sub/link")).toMatchObject({
      type: "symlink",
      linkpath: "deep/b.txt",
      sha256: "link:deep/b.txt",
    });
  });

  it("reads from a stream as well as a buffer", async () => {
    const buffer = await tarOf({ "x.txt": "x" });
    const file = path.join(tmp, "stream.tar");
    fs.writeFileSync(file, buffer);
    const fromStream = await readTree(fs.createReadStream(file));
    expect([...fromStream.keys()]).toEqual(["x.txt"]);
    expect(fromStream.get("x.txt")?.content?.toString()).toBe("x");
  });

  it("keeps no content for files above 1 MiB, but hashes and sizes them", async () => {
    const big = Buffer.alloc(1024 * 1024 + 1, "a");
    const tree = await treeOf({ "big.txt": big });
    const entry = tree.get("big.txt")!;
    expect(entry.size).toBe(big.length);
    expect(entry.content).toBeUndefined();
    expect(entry.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  // Bug: the "./" stripping regex /^\.\/?/ also strips the dot of a dotfile, so ".env" is read
  // as "env" (and collides with a real "env").
  it("keeps the leading dot of dotfiles", async () => {
    const tree = await treeOf({ ".env": "A=1\n", env: "other\n", ".config/x": "x" });
    expect([...tree.keys()].sort()).toEqual([".config", ".config/x", ".env", "env"]);
  });
});

describe("diffTrees", () => {
  it("gives a git-style unified patch for modified, added and deleted text files", async () => {
    const result = await diffOf(
      { "mod.txt": "one\ntwo\nthree\n", "old.txt": "bye\n", "same.txt": "same\n" },
      { "mod.txt": "one\nTWO\nthree\n", "new.txt": "hi\nthere\n", "same.txt": "same\n" },
    );
    expect(result.changed).toBe(true);
    expect(result.entries).toEqual([
      { path: "mod.txt", status: "modified", kind: "text" },
      { path: "new.txt", status: "added", kind: "text", mode_after: "0644" },
      { path: "old.txt", status: "deleted", kind: "text", mode_before: "0644" },
    ]);
    expect(result.patch).toBe(
      [
        "--- a/mod.txt",
        "+++ b/mod.txt",
        "@@ -1,3 +1,3 @@",
        " one",
        "-two",
        "+TWO",
        " three",
        "--- /dev/null",
        "+++ b/new.txt",
        "@@ -0,0 +1,2 @@",
        "+hi",
        "+there",
        "--- a/old.txt",
        "+++ /dev/null",
        "@@ -1,1 +0,0 @@",
        "-bye",
        "",
      ].join("\n"),
    );
    expect(result.patch).not.toMatch(/^=+$/m);
    expect(result.patch).not.toMatch(/\t$/m);
    expect(result.patch_truncated).toBe(false);
    expect(result.summary).toEqual({
      added: 1,
      modified: 1,
      deleted: 1,
      type_changed: 0,
      mode_changed: 0,
      binary: 0,
    });
  });

  it("produces a patch that planPatch applies back to the after state", async () => {
    const before = {
      "src/a.ts": "const a = 1;\nconst b = 2;\n",
      "gone.txt": "x\ny\n",
      "no-eol.txt": "last line",
    };
    const after = {
      "src/a.ts": "const a = 1;\nconst b = 3;\nconst c = 4;\n",
      "src/new.ts": "export {};\n",
      "no-eol.txt": "last line\n",
    };
    const result = await diffOf(before, after);
    const files = new Map(Object.entries(before).map(([k, v]) => [`/workspace/${k}`, v]));
    const plan = await planPatch(result.patch, async (target) => files.get(target));
    const applied = Object.fromEntries(plan.map((c) => [c.path, c.after]));
    expect(applied).toEqual({
      "src/a.ts": after["src/a.ts"],
      "src/new.ts": after["src/new.ts"],
      "no-eol.txt": after["no-eol.txt"],
      "gone.txt": undefined,
    });
  });

  it("reports binary files without patch text", async () => {
    const result = await diffOf(
      { "img.bin": Buffer.from([1, 0, 2, 3]), "del.bin": Buffer.from([0, 0]) },
      {
        "img.bin": Buffer.from([1, 0, 2, 4]),
        "add.bin": Buffer.from([0xff, 0x00]),
        "latin1.txt": Buffer.from("caf\xe9\n", "latin1"),
      },
    );
    expect(result.entries).toEqual([
      { path: "add.bin", status: "added", kind: "binary", mode_after: "0644" },
      { path: "del.bin", status: "deleted", kind: "binary", mode_before: "0644" },
      { path: "img.bin", status: "modified", kind: "binary" },
      { path: "latin1.txt", status: "added", kind: "binary", mode_after: "0644" },
    ]);
    expect(result.patch).toBe("");
    expect(result.summary).toMatchObject({ added: 2, modified: 1, deleted: 1, binary: 4 });
  });

  it("reports a text file that becomes binary as binary, without patch text", async () => {
    const result = await diffOf({ f: "text\n" }, { f: Buffer.from([0, 1, 2]) });
    expect(result.entries).toEqual([{ path: "f", status: "modified", kind: "binary" }]);
    expect(result.patch).toBe("");
    expect(result.summary.binary).toBe(1);
  });

  // Bug: for a modified file the kind is "text" when the NEW side is text, even if the old side
  // was binary; the patch then claims the file is created from /dev/null although it existed.
  it("reports a binary file that becomes text as binary, without patch text", async () => {
    const result = await diffOf({ f: Buffer.from([0, 1, 2]) }, { f: "now text\n" });
    expect(result.entries).toEqual([{ path: "f", status: "modified", kind: "binary" }]);
    expect(result.patch).toBe("");
    expect(result.summary.binary).toBe(1);
  });

  // Same bug as "keeps the leading dot of dotfiles": a changed .env is shown as "env", or not at
  // all when a file named "env" exists too.
  it("reports a changed dotfile under its own name", async () => {
    const result = await diffOf({ ".env": "A=1\n", env: "x\n" }, { ".env": "A=2\n", env: "x\n" });
    expect(result.entries).toEqual([{ path: ".env", status: "modified", kind: "text" }]);
    expect(result.patch).toContain("--- a/.env\n+++ b/.env\n");
  });

  it("reports a mode-only change as mode_changed", async () => {
    const result = await diffOf(
      { "run.sh": { data: "#!/bin/sh\n", mode: 0o644 } },
      { "run.sh": { data: "#!/bin/sh\n", mode: 0o755 } },
    );
    expect(result.entries).toEqual([
      {
        path: "run.sh",
        status: "mode_changed",
        kind: "text",
        mode_before: "0644",
        mode_after: "0755",
      },
    ]);
    expect(result.patch).toBe("");
    expect(result.summary).toMatchObject({ mode_changed: 1, modified: 0 });
  });

  it("reports content and mode changes together as modified with both modes", async () => {
    const result = await diffOf(
      { "run.sh": { data: "echo a\n", mode: 0o644 } },
      { "run.sh": { data: "echo b\n", mode: 0o700 } },
    );
    expect(result.entries).toEqual([
      {
        path: "run.sh",
        status: "modified",
        kind: "text",
        mode_before: "0644",
        mode_after: "0700",
      },
    ]);
    expect(result.patch).toContain("-echo a\n+echo b\n");
  });

  it("reports a file replaced by a symlink as type_changed", async () => {
    const result = await diffOf(
      { x: "file\n", target: "t" },
      { x: { symlink: "target" }, target: "t" },
    );
    expect(result.entries).toHaveLength(1);
    expect(result.entries[0]).toMatchObject({ path: "x", status: "type_changed", kind: "symlink" });
    expect(result.patch).toBe("");
    expect(result.summary).toMatchObject({ type_changed: 1, modified: 0, added: 0, deleted: 0 });
  });

  it("reports a changed symlink target as a modified symlink", async () => {
    const result = await diffOf({ l: { symlink: "a" } }, { l: { symlink: "b" } });
    expect(result.entries).toEqual([{ path: "l", status: "modified", kind: "symlink" }]);
    expect(result.patch).toBe("");
  });

  it("reports a directory mode change but not added or removed directories themselves", async () => {
    const before = await treeOf({ "d/f": "f", "gone/x": "x" });
    const after = await treeOf({ "d/f": "f", "fresh/y": "y" });
    const result = await diffTrees(before, after);
    expect(result.entries.map((e) => `${e.status} ${e.path}`)).toEqual([
      "added fresh/y",
      "deleted gone/x",
    ]);
    after.set("d", { ...after.get("d")!, mode: 0o700 });
    before.set("d", { ...before.get("d")!, mode: 0o755 });
    expect((await diffTrees(before, after)).entries[0]).toEqual({
      path: "d",
      status: "mode_changed",
      kind: "directory",
      mode_before: "0755",
      mode_after: "0700",
    });
  });

  it("reports nothing for unchanged trees", async () => {
    const files = {
      "a.txt": "a\n",
      "dir/b.bin": Buffer.from([0, 1]),
      "dir/l": { symlink: "b.bin" },
      "x.sh": { data: "x", mode: 0o755 },
    };
    const result = await diffOf(files, files);
    expect(result).toEqual({
      changed: false,
      summary: { added: 0, modified: 0, deleted: 0, type_changed: 0, mode_changed: 0, binary: 0 },
      entries: [],
      patch: "",
      patch_truncated: false,
    });
    expect((await diffTrees(new Map(), new Map())).changed).toBe(false);
  });

  it("counts a mixed change set correctly", async () => {
    const result = await diffOf(
      {
        "keep.txt": "k\n",
        "mod.txt": "1\n",
        "del.txt": "d\n",
        "del.bin": Buffer.from([0]),
        "mode.sh": { data: "m", mode: 0o644 },
        swap: "file",
      },
      {
        "keep.txt": "k\n",
        "mod.txt": "2\n",
        "add.txt": "a\n",
        "add2.txt": "a2\n",
        "add.bin": Buffer.from([0, 9]),
        "mode.sh": { data: "m", mode: 0o755 },
        swap: { symlink: "keep.txt" },
      },
    );
    expect(result.changed).toBe(true);
    expect(result.summary).toEqual({
      added: 3,
      modified: 1,
      deleted: 2,
      type_changed: 1,
      mode_changed: 1,
      binary: 2,
    });
    expect(result.entries.map((e) => e.path)).toEqual([
      "add.bin",
      "add.txt",
      "add2.txt",
      "del.bin",
      "del.txt",
      "mod.txt",
      "mode.sh",
      "swap",
    ]);
    // one ---/+++ pair per changed text file
    expect(result.patch.match(/^--- /gm)).toHaveLength(4);
  });

  it("caps the combined patch text", async () => {
    const line = `${"x".repeat(99)}\n`;
    const big = line.repeat(6000); // ~600 KiB per file, two of them exceed the 1 MiB cap
    const result = await diffOf({}, { "a.txt": big, "b.txt": big });
    expect(result.entries.map((e) => e.path)).toEqual(["a.txt", "b.txt"]);
    expect(result.patch_truncated).toBe(true);
    expect(result.patch).toContain("+++ b/a.txt");
    expect(result.patch).not.toContain("+++ b/b.txt");
  });
});
