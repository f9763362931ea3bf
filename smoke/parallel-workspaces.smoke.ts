/**
 * `make smoke-parallel-workspaces`: docs/use-cases/parallel-workspaces.md step
 * by step. A chat host runs `pyro mcp serve --mode repro-fix --project-path
 * CHECKOUT` on smoke/fixtures/python-textstats; the model creates two
 * workspaces of the project at once and tries a different fix in each; one
 * is forked mid-way (from a terminal: fork is not in repro-fix mode's tool
 * set) and the fork goes on with a third approach. Each sees only its own
 * changes; the diffs are compared and the chosen one is labelled and
 * exported; the rest are deleted.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { UseCase, gitStatus, type Structured } from "./use-case.js";

const useCase = new UseCase();
afterAll(() => useCase.close());

const TESTS = "python3 -B -m unittest discover -s tests";
const CORE = "src/textstats/core.py";
const BUG = 'return len(text.split(" "))';

it("two workspaces side by side, a fork mid-way, three fixes, their diffs compared", async () => {
  const project = useCase.checkout("python-textstats");
  const original = fs.readFileSync(path.join(project, CORE), "utf8");
  const mcp = await useCase.connect(["--mode", "repro-fix", "--project-path", project]);

  // Step 1: two workspaces of the same project, created at once.
  const [a, b] = await Promise.all([
    mcp.ok("workspace_create", { name: "fix-split", labels: { issue: "41", approach: "split" } }),
    mcp.ok("workspace_create", { name: "fix-filter", labels: { issue: "41", approach: "filter" } }),
  ]);
  for (const ws of [a!, b!])
    expect(ws).toMatchObject({ state: "started", origin_kind: "git", origin_ref: project });
  expect(a!.id).not.toBe(b!.id);
  const listed = await mcp.ok("workspace_list", {});
  expect(listed.workspaces).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ name: "fix-split", labels: { issue: "41", approach: "split" } }),
      expect.objectContaining({ name: "fix-filter", labels: { issue: "41", approach: "filter" } }),
    ]),
  );

  // Step 2: the same failure in both, run at once.
  const reds = await Promise.all(["fix-split", "fix-filter"].map((ws) => mcp.exec(ws, TESTS)));
  for (const red of reds) {
    expect(red.exit_code).toBe(1);
    expect(red.stderr).toContain("FAILED (failures=3)");
  }

  // Step 3: fix-split: split on any whitespace.
  await mcp.ok("workspace_file_write", {
    workspace_id: "fix-split",
    path: CORE,
    text: original.replace(BUG, "return len(text.split())"),
  });
  const splitGreen = await mcp.exec("fix-split", TESTS);
  expect(splitGreen.exit_code).toBe(0);

  // Step 4: fix-filter, mid-way: drop empty strings (not enough yet), with a note in /tmp.
  await mcp.ok("workspace_file_write", {
    workspace_id: "fix-filter",
    path: CORE,
    text: original.replace(BUG, 'return len([word for word in text.split(" ") if word])'),
  });
  const halfway = await mcp.exec(
    "fix-filter",
    `echo 'filter: empty strings done, whitespace next' > /tmp/notes && ${TESTS}`,
  );
  expect(halfway.stderr).toContain("FAILED (failures=2)");

  // Step 5: fork it there (a terminal step: `pyro workspace fork fix-filter --name fix-regex`).
  const fork = await useCase.cli<Structured>([
    "workspace",
    "fork",
    "fix-filter",
    "--name",
    "fix-regex",
  ]);
  expect(fork).toMatchObject({ name: "fix-regex", state: "started", forked_from: b!.id });
  expect(fork.id).not.toBe(b!.id);
  expect(
    await mcp.ok("workspace_update", { workspace_id: "fix-regex", labels: { approach: "regex" } }),
  ).toMatchObject({ labels: { issue: "41", approach: "regex" } });
  // The fork starts where fix-filter was: its file, and its /tmp (memory and disk were copied).
  const inherited = await mcp.exec("fix-regex", `cat /tmp/notes; grep -c 'if word]' ${CORE}`);
  expect(inherited.stdout).toBe("filter: empty strings done, whitespace next\n1\n");

  // Step 6: each goes on its own way, at once.
  const regexFix = original
    .replace(
      '"""Counting words and lines, and estimating reading time."""\n',
      '"""Counting words and lines, and estimating reading time."""\n\nimport re\n',
    )
    .replace(BUG, 'return len(re.findall(r"\\S+", text))');
  const filterFix = original.replace(BUG, "return len([word for word in text.split() if word])");
  await Promise.all([
    mcp.ok("workspace_file_write", { workspace_id: "fix-regex", path: CORE, text: regexFix }),
    mcp.ok("workspace_file_write", { workspace_id: "fix-filter", path: CORE, text: filterFix }),
  ]);
  const greens = await Promise.all(["fix-filter", "fix-regex"].map((ws) => mcp.exec(ws, TESTS)));
  for (const green of greens) expect(green.exit_code).toBe(0);

  // Step 7: compare the three diffs (all against the project as seeded).
  const [splitDiff, filterDiff, regexDiff] = await Promise.all(
    ["fix-split", "fix-filter", "fix-regex"].map((ws) =>
      mcp.ok("workspace_diff", { workspace_id: ws }),
    ),
  );
  for (const diff of [splitDiff!, filterDiff!, regexDiff!]) {
    expect(diff.changed).toBe(true);
    expect(diff.entries).toEqual([expect.objectContaining({ path: CORE, status: "modified" })]);
    expect(diff.patch).toContain(`-    ${BUG}`);
  }
  expect(splitDiff!.patch).toContain("+    return len(text.split())\n");
  expect(filterDiff!.patch).toContain("+    return len([word for word in text.split() if word])\n");
  expect(regexDiff!.patch).toContain("+import re\n");
  expect(regexDiff!.patch).toContain('+    return len(re.findall(r"\\S+", text))\n');
  // Isolation: nothing of one shows up in another.
  expect(filterDiff!.patch).not.toContain("re.findall");
  expect(splitDiff!.patch).not.toContain("if word");
  expect(
    (await mcp.exec("fix-split", "test -e /tmp/notes && echo shared || echo separate")).stdout,
  ).toBe("separate\n");

  // Step 8: choose the smallest diff, label it, export it; delete the others.
  expect(
    await mcp.ok("workspace_update", { workspace_id: "fix-split", labels: { verdict: "chosen" } }),
  ).toMatchObject({
    labels: { issue: "41", approach: "split", verdict: "chosen" },
  });
  const out = path.join(useCase.tempDir("pyro-parallel-out-"), "core.py");
  await mcp.ok("workspace_export", { workspace_id: "fix-split", path: CORE, output: out });
  expect(fs.readFileSync(out, "utf8")).toBe(original.replace(BUG, "return len(text.split())"));
  for (const ws of ["fix-filter", "fix-regex", "fix-split"])
    expect(await mcp.ok("workspace_delete", { workspace_id: ws })).toMatchObject({ deleted: true });
  expect((await mcp.ok("workspace_list", {})).workspaces).toEqual([]);
  expect(gitStatus(project)).toBe("");
});
