/**
 * `make smoke-review-eval`: docs/use-cases/review-eval.md step by step. A
 * chat host runs `pyro mcp serve --mode review-eval --project-path CHECKOUT`
 * on a pull request's branch of smoke/fixtures/python-textstats (the fix for
 * its failing tests). The model adds a reviewer's test, snapshots that state,
 * runs the suite, checks the behaviour by hand in a Python REPL in a shell,
 * breaks the code on purpose to see the tests catch it, resets to the
 * snapshot, compares, writes and exports a report, and summarises.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { MODE_TOOLS } from "../src/mcp/catalog.js";
import { commitFiles } from "../test/helpers.js";
import { UseCase, gitStatus, type Structured } from "./use-case.js";

const useCase = new UseCase();
afterAll(() => useCase.close());

const TESTS = "python3 -B -m unittest discover -s tests";

const REVIEW_TEST = `import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from textstats import word_count  # noqa: E402


class ReviewerTest(unittest.TestCase):
    def test_unicode_whitespace(self):
        self.assertEqual(word_count("no\\u00a0break\\u2003em space"), 4)
`;

it("snapshot → suite → REPL check in a shell → a deliberate break → reset to the snapshot → compare → report", async () => {
  // The pull request: the fix for issue #41, committed on the branch being reviewed.
  const repo = useCase.checkout("python-textstats");
  const core = path.join(repo, "src/textstats/core.py");
  commitFiles(
    repo,
    {
      "src/textstats/core.py": fs
        .readFileSync(core, "utf8")
        .replace('return len(text.split(" "))', "return len(text.split())"),
    },
    "word_count: split on any whitespace (fixes #41)",
  );

  // Step 1: the server.
  const mcp = await useCase.connect(["--mode", "review-eval", "--project-path", repo]);
  expect(await mcp.tools()).toEqual([...MODE_TOOLS["review-eval"]].sort());

  // Step 2: a workspace on the branch.
  const ws = await mcp.ok("workspace_create", { name: "review-pr-42" });
  const id = ws.id as string;
  expect(ws).toMatchObject({ state: "started", origin_kind: "git", origin_ref: repo });

  // Step 3: the reviewer's own test, then a snapshot of that state.
  const added = await mcp.exec(
    id,
    `cat > tests/test_review.py <<'EOF'\n${REVIEW_TEST}EOF\n${TESTS} 2>&1 | tail -3`,
  );
  expect(added.exit_code).toBe(0);
  expect(added.stdout).toContain("Ran 6 tests");
  expect(added.stdout).toContain("OK");
  const snap = await mcp.ok("snapshot_create", { workspace_id: id, name: "with-review-test" });
  expect(snap).toMatchObject({ name: "with-review-test" });

  // Step 4: the whole suite, verbose.
  const suite = await mcp.exec(id, `${TESTS} -v`);
  expect(suite.exit_code).toBe(0);
  expect(suite.stderr).toContain("test_unicode_whitespace");
  expect(suite.stderr).toMatch(/\nOK\n/);

  // Step 5: an interactive check, in a shell: a Python REPL, read as plain text.
  const shell = await mcp.ok("shell_open", { workspace_id: id });
  const shellId = shell.shell_id as string;
  let cursor = 0;
  const readUntil = async (pattern: RegExp): Promise<string> => {
    let text = "";
    for (const deadline = Date.now() + 90_000; Date.now() < deadline;) {
      const read: Structured = await mcp.ok("shell_read", {
        workspace_id: id,
        shell_id: shellId,
        cursor,
        wait_for_idle_ms: 300,
      });
      text += read.text as string;
      cursor = read.next_cursor as number;
      if (pattern.test(text)) return text;
    }
    throw new Error(`never saw ${pattern} in ${JSON.stringify(text)}`);
  };
  await readUntil(/[#$]\s*$/);
  await mcp.ok("shell_write", {
    workspace_id: id,
    shell_id: shellId,
    input: "cd src && python3 -q",
  });
  await readUntil(/>>>\s*$/);
  await mcp.ok("shell_write", {
    workspace_id: id,
    shell_id: shellId,
    input:
      'from textstats import word_count, reading_time; print("check", word_count("tabs\\tand\\nnewlines  here"), reading_time("x " * 1000))',
  });
  const repl = await readUntil(/^check \d+ \d+\s*$/m);
  expect(repl).toMatch(/^check 4 5\s*$/m);
  expect(repl).not.toContain("\u001b");
  expect(await mcp.ok("shell_close", { workspace_id: id, shell_id: shellId })).toMatchObject({
    shell_id: shellId,
  });

  // Step 6: an experiment: put the bug back and see that the tests catch it.
  const broken = await mcp.exec(
    id,
    `sed -i 's/text.split()/text.split(" ")/' src/textstats/core.py && ${TESTS}`,
  );
  expect(broken.exit_code).toBe(1);
  expect(broken.stderr).toContain("FAILED (failures=4)");

  // What happened so far (the summary covers the time since the last reset).
  const before = await mcp.ok("workspace_summary", { workspace_id: id });
  expect(before).toMatchObject({
    reset_count: 0,
    commands: expect.objectContaining({ total: 3, failed: 1 }),
    snapshots: [expect.objectContaining({ kind: "snapshot_create", name: "with-review-test" })],
    shells: [expect.objectContaining({ shell_id: shellId, state: "closed" })],
  });

  // Step 7: back to the snapshot: a fresh machine, /workspace as it was then.
  const listed = await mcp.ok("snapshot_list", { workspace_id: id });
  expect((listed.snapshots as { name: string }[]).map((s) => s.name)).toEqual([
    "baseline",
    "with-review-test",
  ]);
  const reset = await mcp.ok("workspace_reset", { workspace_id: id, snapshot: "with-review-test" });
  expect(reset).toMatchObject({ id, restored_from: "with-review-test", reset_count: 1 });
  const gone = await mcp.call("shell_read", { workspace_id: id, shell_id: shellId });
  expect(gone.error).toBe(true);

  // Step 8: compare: green again, with the reviewer's test and without the break; write the report.
  const again = await mcp.exec(
    id,
    [
      "grep -c 'text.split()' src/textstats/core.py",
      `{ echo '# Review of PR 42'; echo; echo 'Suite (with a reviewer test for Unicode whitespace):'; ${TESTS} 2>&1 | tail -3; echo 'Putting the bug back fails 4 tests: the tests cover the fix.'; } > REVIEW.md`,
      "tail -2 REVIEW.md",
    ].join(" && "),
  );
  expect(again).toMatchObject({ exit_code: 0 });
  expect(again.stdout).toBe(
    "1\nOK\nPutting the bug back fails 4 tests: the tests cover the fix.\n",
  );

  // Step 9: export the report, summarise, delete.
  const out = path.join(useCase.tempDir("pyro-review-out-"), "REVIEW.md");
  expect(
    await mcp.ok("workspace_export", { workspace_id: id, path: "REVIEW.md", output: out }),
  ).toMatchObject({
    output: out,
  });
  expect(fs.readFileSync(out, "utf8")).toContain("Ran 6 tests");
  const after = await mcp.ok("workspace_summary", { workspace_id: id });
  expect(after).toMatchObject({
    reset_count: 1,
    commands: expect.objectContaining({ total: 1, failed: 0 }),
    exports: [expect.objectContaining({ path: "/workspace/REVIEW.md" })],
    shells: [],
  });
  expect(await mcp.ok("workspace_delete", { workspace_id: id })).toMatchObject({ deleted: true });
  expect(gitStatus(repo)).toBe("");
});
