import { describe, expect, it } from "vitest";
import { PyroError } from "../errors.js";
import { describeHunk, planPatch, workspacePath } from "./patch.js";

const FIFTEEN = Array.from({ length: 15 }, (_, i) => `${i + 1}\n`).join("");

/** A fake guest: a Map of absolute path → content, and a reader that records what it read. */
function fakeGuest(files: Record<string, string>) {
  const map = new Map(Object.entries(files));
  const reads: string[] = [];
  const read = async (target: string) => {
    reads.push(target);
    return map.get(target);
  };
  return { map, reads, read };
}

async function planError(patch: string, files: Record<string, string> = {}) {
  const guest = fakeGuest(files);
  const snapshot = new Map(guest.map);
  const error = await planPatch(patch, guest.read).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PyroError);
  // planning never writes
  expect(guest.map).toEqual(snapshot);
  return error as PyroError;
}

describe("workspacePath", () => {
  it.each([
    ["a.txt", "/workspace/a.txt"],
    ["./a.txt", "/workspace/a.txt"],
    ["src/../a.txt", "/workspace/a.txt"],
    ["src//lib/./x.ts", "/workspace/src/lib/x.ts"],
    ["dir/", "/workspace/dir"],
    ["/workspace/a/b", "/workspace/a/b"],
    ["/workspace/a/../b", "/workspace/b"],
    ["/workspace", "/workspace"],
    ["/workspace/", "/workspace"],
    ["", "/workspace"],
    [".", "/workspace"],
  ])("resolves %j to %s", (input, expected) => {
    expect(workspacePath(input)).toBe(expected);
  });

  it.each([
    "../etc/passwd",
    "/etc/passwd",
    "..",
    "a/../../x",
    "/workspace/../etc/passwd",
    "/workspaces/x",
    "/workspace-evil/x",
    "/",
  ])("refuses %j with path_not_allowed", (input) => {
    let caught: unknown;
    try {
      workspacePath(input);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(PyroError);
    expect((caught as PyroError).code).toBe("path_not_allowed");
    expect((caught as PyroError).hint).toBeDefined();
  });

  it("uses another root when given one", () => {
    expect(workspacePath("x", "/srv/root")).toBe("/srv/root/x");
    expect(() => workspacePath("/workspace/x", "/srv/root")).toThrow(PyroError);
  });
});

describe("describeHunk", () => {
  it("names the hunk by its 1-based number and header", () => {
    expect(describeHunk({ oldStart: 3, oldLines: 2, newStart: 3, newLines: 4, lines: [] }, 1)).toBe(
      "hunk 2 (@@ -3,2 +3,4 @@)",
    );
  });
});

describe("planPatch", () => {
  it("plans a modification", async () => {
    const guest = fakeGuest({ "/workspace/src/a.txt": "one\ntwo\nthree\n" });
    const plan = await planPatch(
      [
        "--- a/src/a.txt",
        "+++ b/src/a.txt",
        "@@ -1,3 +1,3 @@",
        " one",
        "-two",
        "+TWO",
        " three",
        "",
      ].join("\n"),
      guest.read,
    );
    expect(plan).toEqual([
      {
        path: "src/a.txt",
        target: "/workspace/src/a.txt",
        status: "modified",
        before: "one\ntwo\nthree\n",
        after: "one\nTWO\nthree\n",
      },
    ]);
    expect(guest.reads).toEqual(["/workspace/src/a.txt"]);
    expect(guest.map.get("/workspace/src/a.txt")).toBe("one\ntwo\nthree\n");
  });

  it("plans an addition from /dev/null", async () => {
    const guest = fakeGuest({});
    const plan = await planPatch(
      ["--- /dev/null", "+++ b/new/file.txt", "@@ -0,0 +1,2 @@", "+hello", "+world", ""].join("\n"),
      guest.read,
    );
    expect(plan).toEqual([
      {
        path: "new/file.txt",
        target: "/workspace/new/file.txt",
        status: "added",
        before: undefined,
        after: "hello\nworld\n",
      },
    ]);
    expect(guest.map.size).toBe(0);
  });

  it("plans a deletion to /dev/null", async () => {
    const guest = fakeGuest({ "/workspace/old.txt": "bye\nnow\n" });
    const plan = await planPatch(
      ["--- a/old.txt", "+++ /dev/null", "@@ -1,2 +0,0 @@", "-bye", "-now", ""].join("\n"),
      guest.read,
    );
    expect(plan).toEqual([
      {
        path: "old.txt",
        target: "/workspace/old.txt",
        status: "deleted",
        before: "bye\nnow\n",
        after: undefined,
      },
    ]);
    expect(guest.map.get("/workspace/old.txt")).toBe("bye\nnow\n");
  });

  // Bug: a deletion whose hunks do not cover the whole file is still planned as a deletion, so
  // lines the patch never mentioned are lost (git apply refuses: "removal patch leaves file
  // contents").
  it("refuses a deletion that leaves content behind", async () => {
    const error = await planError(
      ["--- a/old.txt", "+++ /dev/null", "@@ -1,2 +0,0 @@", "-bye", "-now", ""].join("\n"),
      { "/workspace/old.txt": "bye\nnow\nextra line the patch never saw\n" },
    );
    expect(error.code).toBe("patch_failed");
    expect(error.message).toContain("old.txt");
  });

  it("plans several files at once, git diff style", async () => {
    const guest = fakeGuest({ "/workspace/a": "a\n", "/workspace/b": "b\n" });
    const patch = [
      "diff --git a/a b/a",
      "index 7898192..e69de29 100644",
      "--- a/a",
      "+++ b/a",
      "@@ -1 +1 @@",
      "-a",
      "+A",
      "diff --git a/b b/b",
      "deleted file mode 100644",
      "--- a/b",
      "+++ /dev/null",
      "@@ -1 +0,0 @@",
      "-b",
      "diff --git a/c b/c",
      "new file mode 100644",
      "--- /dev/null",
      "+++ b/c",
      "@@ -0,0 +1 @@",
      "+c",
      "",
    ].join("\n");
    const plan = await planPatch(patch, guest.read);
    expect(plan.map((c) => [c.path, c.status, c.after])).toEqual([
      ["a", "modified", "A\n"],
      ["b", "deleted", undefined],
      ["c", "added", "c\n"],
    ]);
  });

  it("accepts diff -u headers with timestamps and no a/ b/ prefixes", async () => {
    const guest = fakeGuest({ "/workspace/f.txt": "x\n" });
    const plan = await planPatch(
      [
        "--- f.txt\t2024-01-01 00:00:00.000000000 +0000",
        "+++ f.txt\t2024-01-02 00:00:00.000000000 +0000",
        "@@ -1 +1 @@",
        "-x",
        "+y",
        "",
      ].join("\n"),
      guest.read,
    );
    expect(plan[0]).toMatchObject({ path: "f.txt", target: "/workspace/f.txt", after: "y\n" });
  });

  it("fails with patch_failed naming hunk 2 and the file when the second hunk does not apply", async () => {
    const files = { "/workspace/f.txt": FIFTEEN, "/workspace/g.txt": "g\n" };
    const patch = [
      "--- a/g.txt",
      "+++ b/g.txt",
      "@@ -1 +1 @@",
      "-g",
      "+G",
      "--- a/f.txt",
      "+++ b/f.txt",
      "@@ -1,3 +1,3 @@",
      " 1",
      "-2",
      "+two",
      " 3",
      "@@ -12,3 +12,3 @@",
      " 12",
      "-NOT THIRTEEN",
      "+thirteen",
      " 14",
      "",
    ].join("\n");
    const error = await planError(patch, files);
    expect(error.code).toBe("patch_failed");
    expect(error.message).toContain("hunk 2");
    expect(error.message).toContain("f.txt");
    expect(error.message).toContain("@@ -12,3 +12,3 @@");
    expect(error.message).toContain("nothing was changed");
    expect(error.fix).toEqual({ kind: "reread_file", path: "f.txt" });
  });

  it("fails when the patch adds a file that exists", async () => {
    const error = await planError(
      ["--- /dev/null", "+++ b/a.txt", "@@ -0,0 +1 @@", "+new", ""].join("\n"),
      { "/workspace/a.txt": "old\n" },
    );
    expect(error.code).toBe("patch_failed");
    expect(error.message).toContain("a.txt already exists");
  });

  it("fails when the patch modifies a missing file", async () => {
    const error = await planError(
      ["--- a/missing.txt", "+++ b/missing.txt", "@@ -1 +1 @@", "-x", "+y", ""].join("\n"),
    );
    expect(error.code).toBe("patch_failed");
    expect(error.message).toContain("missing.txt does not exist");
    expect(error.hint).toContain("/workspace");
  });

  it("fails when the patch deletes a missing file", async () => {
    const error = await planError(
      ["--- a/gone", "+++ /dev/null", "@@ -1 +0,0 @@", "-x", ""].join("\n"),
    );
    expect(error.code).toBe("patch_failed");
  });

  it("fails when a file appears twice", async () => {
    const hunk = ["--- a/a", "+++ b/a", "@@ -1 +1 @@", "-a", "+b"];
    const error = await planError([...hunk, ...hunk, ""].join("\n"), { "/workspace/a": "a\n" });
    expect(error.code).toBe("patch_failed");
    expect(error.message).toContain("appears twice");
  });

  it.each([
    ["a relative escape", "../etc/passwd"],
    ["an absolute path", "/etc/passwd"],
    ["an escape behind the a/ prefix", "a/../../etc/passwd"],
  ])("refuses %s with path_not_allowed before reading anything", async (_what, name) => {
    const guest = fakeGuest({ "/etc/passwd": "root:x:0:0\n" });
    const patch = [
      `--- ${name}`,
      `+++ ${name}`,
      "@@ -1 +1 @@",
      "-root:x:0:0",
      "+root::0:0",
      "",
    ].join("\n");
    const error = await planPatch(patch, guest.read).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PyroError);
    expect((error as PyroError).code).toBe("path_not_allowed");
    expect(guest.reads).toEqual([]);
    expect(guest.map.get("/etc/passwd")).toBe("root:x:0:0\n");
  });

  it("refuses an escaping new file name with path_not_allowed", async () => {
    const error = await planError(
      ["--- /dev/null", "+++ b/../../root/.ssh/authorized_keys", "@@ -0,0 +1 @@", "+key", ""].join(
        "\n",
      ),
    );
    expect(error.code).toBe("path_not_allowed");
  });

  it.each([
    ["plain prose", "please change line 3 to say hello\n"],
    ["an empty string", ""],
    ["headers without hunks", "--- a/x\n+++ b/x\n"],
    ["a hunk with a bad line", "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n garbage\n"],
    ["a hunk longer than its header says", "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n+c\n"],
  ])("rejects %s with patch_failed", async (_what, text) => {
    const error = await planError(text, { "/workspace/x": "a\n" });
    expect(error.code).toBe("patch_failed");
    expect(error.hint ?? error.message).toMatch(/\S/);
  });
});
