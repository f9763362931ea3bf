/**
 * The MCP review-eval mode end to end through the official client, as a chat
 * host drives it: its whole tool set, a snapshot before the experiment, the
 * suite run, an interactive check in a shell, a reset back to the snapshot,
 * the summary, export and cleanup. Secret parameters stay out of every
 * schema but workspace-full's.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MODE_TOOLS } from "../src/mcp/catalog.js";
import { commitFiles } from "./helpers.js";
import { callTool, closeMcpClients, connectMcp, type Structured } from "./mcp-client.js";

const cleanups: (() => void)[] = [];
afterEach(async () => {
  await closeMcpClients();
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A small Python package whose test fails until add() is fixed. */
function project(): string {
  const dir = tempDir("pyro-review-");
  commitFiles(dir, {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "test_calc.py":
      "import calc\nassert calc.add(2, 3) == 5, 'add is wrong'\nprint('tests pass')\n",
  });
  return dir;
}

describe("MCP review-eval mode", () => {
  it("has its whole tool set and runs a review with an interactive shell check", async () => {
    const client = await connectMcp(["--mode", "review-eval"], project());
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([...MODE_TOOLS["review-eval"]].sort());
    const create = tools.find((t) => t.name === "workspace_create")!;
    expect(Object.keys(create.inputSchema.properties ?? {})).not.toContain("secrets");
    const open = tools.find((t) => t.name === "shell_open")!;
    expect(Object.keys(open.inputSchema.properties ?? {})).not.toContain("secret_env");

    const created = await callTool(client, "workspace_create", {});
    expect(created.error, created.text).toBe(false);
    const ws = created.data.id as string;
    try {
      expect(
        (await callTool(client, "snapshot_create", { workspace_id: ws, name: "before" })).error,
      ).toBe(false);
      const failing = await callTool(client, "workspace_exec", {
        workspace_id: ws,
        command: "python3 test_calc.py",
      });
      expect(failing.data.exit_code).not.toBe(0);
      expect(failing.data.stderr).toContain("add is wrong");

      // The interactive check: a REPL in a shell, read plain (the tool's default).
      const shell = await callTool(client, "shell_open", { workspace_id: ws });
      expect(shell.error, shell.text).toBe(false);
      const shellId = shell.data.shell_id as string;
      let cursor = 0;
      const readUntil = async (pattern: RegExp): Promise<Structured> => {
        let text = "";
        const seen: unknown[] = [];
        for (const deadline = Date.now() + 90_000; Date.now() < deadline;) {
          const read = await callTool(client, "shell_read", {
            workspace_id: ws,
            shell_id: shellId,
            cursor,
          });
          expect(read.error, read.text).toBe(false);
          // structuredContent alone is complete: the text and where to go on from.
          text += read.data.text as string;
          seen.push([cursor, read.data.next_cursor, read.data.text]);
          cursor = read.data.next_cursor as number;
          if (pattern.test(text)) return { ...read.data, text };
        }
        throw new Error(`never saw ${pattern} in ${JSON.stringify(seen)}`);
      };
      await readUntil(/[#$]\s*$/);
      await callTool(client, "shell_write", {
        workspace_id: ws,
        shell_id: shellId,
        input: "python3 -q",
      });
      await readUntil(/>>>\s*$/);
      await callTool(client, "shell_write", {
        workspace_id: ws,
        shell_id: shellId,
        input: "import calc; print('sum', calc.add(2, 3))",
      });
      const repl = await readUntil(/^sum -1$/m);
      expect(repl.text).not.toContain("\u001b");
      expect(
        (await callTool(client, "shell_close", { workspace_id: ws, shell_id: shellId })).error,
      ).toBe(false);

      const fixed = await callTool(client, "workspace_exec", {
        workspace_id: ws,
        command: "sed -i 's/a - b/a + b/' calc.py && python3 test_calc.py",
      });
      expect(fixed.data.exit_code).toBe(0);
      const summary = await callTool(client, "workspace_summary", { workspace_id: ws });
      const shells = summary.data.shells as { shell_id: string; state: string }[];
      expect(shells).toEqual([expect.objectContaining({ shell_id: shellId, state: "closed" })]);
      expect(summary.text).toContain(`shell ${shellId}`);

      const report = path.join(tempDir("pyro-review-out-"), "calc.py");
      const exported = await callTool(client, "workspace_export", {
        workspace_id: ws,
        path: "calc.py",
        output: report,
      });
      expect(exported.error, exported.text).toBe(false);
      expect(fs.readFileSync(report, "utf8")).toContain("a + b");

      const reset = await callTool(client, "workspace_reset", {
        workspace_id: ws,
        snapshot: "before",
      });
      expect(reset.error, reset.text).toBe(false);
      const again = await callTool(client, "workspace_exec", {
        workspace_id: ws,
        command: "python3 test_calc.py",
      });
      expect(again.data.exit_code).not.toBe(0);
      const gone = await callTool(client, "shell_read", { workspace_id: ws, shell_id: shellId });
      expect(gone.error).toBe(true);
      expect(gone.text).toMatch(/shell_closed|shell_not_found/);
      expect(gone.text).toContain("shell_open");
    } finally {
      expect((await callTool(client, "workspace_delete", { workspace_id: ws })).error).toBe(false);
    }
  });

  it("offers secrets only in workspace-full", async () => {
    const full = await connectMcp(["--profile", "workspace-full"]);
    const tools = (await full.listTools()).tools;
    const params = (name: string) =>
      Object.keys(tools.find((t) => t.name === name)!.inputSchema.properties ?? {});
    expect(params("workspace_create")).toEqual(expect.arrayContaining(["secrets", "secret_files"]));
    for (const tool of ["workspace_exec", "shell_open", "service_start"])
      expect(params(tool)).toContain("secret_env");
    for (const args of [[], ["--mode", "inspect"], ["--mode", "repro-fix"]]) {
      const client = await connectMcp(args);
      for (const tool of (await client.listTools()).tools)
        expect(JSON.stringify(tool.inputSchema)).not.toMatch(/secret/);
    }
  });
});
