/**
 * `make smoke-repro-fix-loop`: docs/use-cases/repro-fix-loop.md step by step.
 * A chat host runs `pyro mcp serve --mode repro-fix --project-path CHECKOUT`
 * on the fixture smoke/fixtures/python-textstats (a Python package whose
 * tests fail); the model reproduces the failure, tries a fix that is not
 * enough, resets to the baseline, applies the right patch, shows the diff,
 * exports the fixed file and reports with the summary. The host's checkout
 * is never touched.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { MODE_TOOLS } from "../src/mcp/catalog.js";
import { UseCase, gitStatus } from "./use-case.js";

const useCase = new UseCase();
afterAll(() => useCase.close());

const TESTS = "python3 -B -m unittest discover -s tests";

it("repro → a partial fix → reset → the right patch → green → diff, export, summary", async () => {
  const project = useCase.checkout("python-textstats");

  // Step 1: the server a chat host starts (pyro host connect claude-code --mode repro-fix --project-path …).
  const mcp = await useCase.connect(["--mode", "repro-fix", "--project-path", project]);
  expect(await mcp.tools()).toEqual([...MODE_TOOLS["repro-fix"]].sort());

  // Step 2: a workspace seeded from the project.
  const ws = await mcp.ok("workspace_create", { name: "issue-41", labels: { issue: "41" } });
  const id = ws.id as string;
  expect(id).toMatch(/^ws_/);
  expect(ws).toMatchObject({
    name: "issue-41",
    labels: { issue: "41" },
    state: "started",
    origin_kind: "git",
    origin_ref: project,
    network_policy: "off",
  });

  // Step 3: reproduce.
  const red = await mcp.exec(id, TESTS);
  expect(red).toMatchObject({ exit_code: 1, timed_out: false });
  expect(red.stderr).toContain("FAILED (failures=3)");
  expect(red.stderr).toContain("test_repeated_whitespace");

  // Step 4: read the code.
  const source = await mcp.ok("workspace_file_read", {
    workspace_id: id,
    path: "src/textstats/core.py",
  });
  expect(source).toMatchObject({ truncated: false, encoding: "utf-8" });
  expect(source.content).toContain('return len(text.split(" "))');

  // Step 5: a first attempt that is not enough (skips empty strings, still splits on " " only).
  const partial = (source.content as string).replace(
    'return len(text.split(" "))',
    'return len([word for word in text.split(" ") if word])',
  );
  const written = await mcp.ok("workspace_file_write", {
    workspace_id: id,
    path: "src/textstats/core.py",
    text: partial,
  });
  expect(written).toMatchObject({
    path: "/workspace/src/textstats/core.py",
    bytes_written: Buffer.byteLength(partial),
  });
  await mcp.exec(
    id,
    "python3 -c 'import sys; sys.path.insert(0, \"src\"); import textstats' && touch /tmp/scratch",
  );
  const stillRed = await mcp.exec(id, TESTS);
  expect(stillRed.exit_code).toBe(1);
  expect(stillRed.stderr).toContain("FAILED (failures=2)");

  // Step 6: reset instead of undoing by hand: a fresh machine, /workspace back at the baseline.
  const reset = await mcp.ok("workspace_reset", { workspace_id: id });
  expect(reset).toMatchObject({ id, name: "issue-41", restored_from: "baseline", reset_count: 1 });
  expect(await mcp.ok("workspace_diff", { workspace_id: id })).toMatchObject({ changed: false });
  expect((await mcp.exec(id, "test -e /tmp/scratch && echo kept || echo fresh")).stdout).toBe(
    "fresh\n",
  );

  // Step 7: the right fix, as a patch.
  const patch = [
    "--- a/src/textstats/core.py",
    "+++ b/src/textstats/core.py",
    "@@ -5,7 +5,7 @@",
    " ",
    " def word_count(text):",
    '     """The number of words in text: runs of characters between whitespace."""',
    '-    return len(text.split(" "))',
    "+    return len(text.split())",
    " ",
    " ",
    " def line_count(text):",
    "",
  ].join("\n");
  const applied = await mcp.ok("workspace_patch_apply", { workspace_id: id, patch });
  expect(applied).toMatchObject({
    applied: true,
    files: [expect.objectContaining({ path: "src/textstats/core.py" })],
  });

  // Step 8: green.
  const green = await mcp.exec(id, `${TESTS} -v`);
  expect(green.exit_code).toBe(0);
  expect(green.stderr).toContain("Ran 5 tests");
  expect(green.stderr).toMatch(/\nOK\n/);

  // Step 9: the change, against the baseline.
  const diff = await mcp.ok("workspace_diff", { workspace_id: id });
  expect(diff).toMatchObject({
    changed: true,
    summary: expect.objectContaining({ modified: 1, added: 0, deleted: 0 }),
    entries: [expect.objectContaining({ path: "src/textstats/core.py", status: "modified" })],
  });
  expect(diff.patch).toContain('-    return len(text.split(" "))');
  expect(diff.patch).toContain("+    return len(text.split())");

  // Step 10: export the fixed file to the host (a new path; the checkout itself is not written).
  const out = path.join(useCase.tempDir("pyro-repro-out-"), "core.py");
  const exported = await mcp.ok("workspace_export", {
    workspace_id: id,
    path: "src/textstats/core.py",
    output: out,
  });
  expect(exported).toMatchObject({ output: out, skipped: [] });
  expect(fs.readFileSync(out, "utf8")).toContain("return len(text.split())");

  // Step 11: label it, then the report.
  expect(
    await mcp.ok("workspace_update", { workspace_id: id, labels: { status: "fixed" } }),
  ).toMatchObject({
    labels: { issue: "41", status: "fixed" },
  });
  const summary = await mcp.ok("workspace_summary", { workspace_id: id });
  expect(summary).toMatchObject({
    workspace_id: id,
    reset_count: 1,
    commands: expect.objectContaining({ total: 2, failed: 0 }),
    changes: expect.objectContaining({
      files: [expect.objectContaining({ path: "src/textstats/core.py", status: "modified" })],
    }),
    patches: [expect.objectContaining({ kind: "patch_apply" })],
    exports: [expect.objectContaining({ path: "/workspace/src/textstats/core.py", output: out })],
    file_writes: [],
  });

  // Step 12: clean up. The host's checkout never changed.
  expect(await mcp.ok("workspace_delete", { workspace_id: id })).toMatchObject({ deleted: true });
  expect(gitStatus(project)).toBe("");
});
