/**
 * The MCP server as a chat host sees it: the official MCP client, over
 * stdio, against the built CLI (`pyro mcp serve`), with real guests.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CATALOG, OUTPUT_LIMITS } from "../src/index.js";
import {
  MODES,
  MODE_TOOLS,
  PENDING,
  PROFILES,
  PROFILE_TOOLS,
  type ToolName,
} from "../src/mcp/catalog.js";
import { commitFiles, runCli } from "./helpers.js";
import { callTool, closeMcpClients, connectMcp } from "./mcp-client.js";

const cleanups: (() => void)[] = [];
afterEach(async () => {
  await closeMcpClients();
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const connect = connectMcp;
const call = callTool;

function implemented(tools: readonly ToolName[]): string[] {
  return tools.filter((t) => PENDING[t] === undefined).sort();
}

/** A git checkout with a failing test, as a project to seed from. */
function project(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-mcp-project-"));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  commitFiles(dir, {
    "calc.sh": "add() { echo $(( $1 - $2 )); }\n",
    "test.sh": '. ./calc.sh\n[ "$(add 2 3)" = 5 ] && echo PASS || { echo FAIL; exit 1; }\n',
    ".gitignore": "secret.txt\n",
    "secret.txt": "do not seed\n",
  });
  return dir;
}

describe("pyro mcp serve", () => {
  it("lists exactly the contract's tools for every profile and mode, with schemas and annotations", async () => {
    const surfaces: [string[], readonly ToolName[]][] = [
      ...PROFILES.map((p): [string[], readonly ToolName[]] => [["--profile", p], PROFILE_TOOLS[p]]),
      ...MODES.map((m): [string[], readonly ToolName[]] => [["--mode", m], MODE_TOOLS[m]]),
      [[], PROFILE_TOOLS["workspace-core"]],
    ];
    for (const [args, expected] of surfaces) {
      const client = await connect(args);
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort(), args.join(" ")).toEqual(implemented(expected));
      for (const tool of tools) {
        expect(tool.description?.length, tool.name).toBeGreaterThan(40);
        expect(tool.outputSchema, tool.name).toBeDefined();
        expect(tool.annotations?.readOnlyHint, tool.name).toBeTypeOf("boolean");
        expect(tool.annotations?.destructiveHint, tool.name).toBeTypeOf("boolean");
        // Hosts such as Claude's API refuse a tool whose input schema is not an object at the top.
        const schema = tool.inputSchema as Record<string, unknown>;
        const where = `${args.join(" ")} ${tool.name}`;
        expect(schema.type, where).toBe("object");
        for (const combinator of ["anyOf", "oneOf", "allOf"])
          expect(schema[combinator], `${where} ${combinator}`).toBeUndefined();
        const properties = (schema.properties ?? {}) as Record<string, { description?: string }>;
        for (const [param, spec] of Object.entries(properties))
          expect(spec.description?.length ?? 0, `${where}.${param}`).toBeGreaterThan(10);
        if ("environment" in properties)
          expect((properties.environment as { enum?: string[] }).enum, where).toEqual(
            CATALOG.map((e) => e.name),
          );
      }
      expect(client.getInstructions()?.length).toBeGreaterThan(100);
      await client.close();
    }
  });

  it("leaves parameters of features outside the surface out of the schemas", async () => {
    const core = await connect([]);
    const coreTools = (await core.listTools()).tools;
    const schemaOf = (tools: typeof coreTools, name: string) =>
      Object.keys(
        (tools.find((t) => t.name === name)?.inputSchema.properties ?? {}) as Record<
          string,
          unknown
        >,
      );
    expect(schemaOf(coreTools, "workspace_reset")).not.toContain("snapshot");
    expect(schemaOf(coreTools, "workspace_create")).not.toContain("ttl_seconds");
    const full = await connect(["--profile", "workspace-full"]);
    const fullTools = (await full.listTools()).tools;
    expect(schemaOf(fullTools, "workspace_reset")).toContain("snapshot");
    expect(schemaOf(fullTools, "workspace_create")).toContain("ttl_seconds");
  });

  it("answers bad ids and bad arguments with tool errors that name the fix", async () => {
    const client = await connect([]);
    const unknown = await call(client, "workspace_status", { workspace_id: "ws_000000000000" });
    expect(unknown.error).toBe(true);
    expect(unknown.text).toMatch(/workspace_not_found/);
    expect(unknown.text).toMatch(
      /fix: (use one of the known workspaces|there are no workspaces: call workspace_create)/,
    );
    const missing = await call(client, "workspace_exec", { command: "true" });
    expect(missing.error).toBe(true);
    expect(missing.text).toMatch(/workspace_id/);
    const traversal = await call(client, "workspace_file_read", {
      workspace_id: "ws_000000000000",
      path: "../etc/passwd",
    });
    expect(traversal.error).toBe(true);
  });

  it("narrows a profile with a mode, and refuses a pair with no tools in common", async () => {
    const narrowed = await connectMcp(["--profile", "workspace-core", "--mode", "cold-start"]);
    const names = (await narrowed.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual(
      MODE_TOOLS["cold-start"].filter((t) => PROFILE_TOOLS["workspace-core"].includes(t)).sort(),
    );
    const result = await runCli(["mcp", "serve", "--profile", "vm-run", "--mode", "inspect"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/no tools within profile vm-run/);
  });

  it("seeds from a repository it clones on the host (--repo-url, --repo-ref)", async () => {
    const repo = project();
    const first = execFileSync("git", ["-C", repo, "rev-parse", "HEAD"], {
      encoding: "utf8",
    }).trim();
    commitFiles(repo, { "later.txt": "added after the pinned commit\n" }, "later");
    const client = await connect(["--repo-url", repo, "--repo-ref", first]);
    const created = await call(client, "workspace_create", {});
    expect(created.error, created.text).toBe(false);
    const id = created.data.id as string;
    cleanups.push(() => void runCli(["workspace", "delete", id]));
    expect(created.data).toMatchObject({ origin_kind: "repo", origin_ref: `${repo}#${first}` });
    const ls = await call(client, "workspace_exec", { workspace_id: id, command: "ls -A" });
    expect(ls.data.stdout).toBe(".gitignore\ncalc.sh\ntest.sh\n");
    const empty = await call(client, "workspace_create", { empty: true });
    cleanups.push(() => void runCli(["workspace", "delete", empty.data.id as string]));
    expect(empty.data).toMatchObject({ origin_kind: "empty" });
    const bad = await runCli(["mcp", "serve", "--repo-url", path.join(repo, "missing")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/could not clone/);
  });

  it("runs a repro-fix loop through MCP tool calls on a real guest, seeded from the project", async () => {
    const dir = project();
    const client = await connect(["--mode", "repro-fix"], dir);
    const tools = (await client.listTools()).tools;
    expect(tools.find((t) => t.name === "workspace_create")?.description).toContain(dir);

    const created = await call(client, "workspace_create", { name: "mcp-repro" });
    expect(created.error, created.text).toBe(false);
    const id = created.data.id as string;
    cleanups.push(() => void runCli(["workspace", "delete", id]));
    expect(created.data).toMatchObject({ state: "started", origin_kind: "git", origin_ref: dir });

    const listing = await call(client, "workspace_file_list", { workspace_id: id });
    const names = (listing.data.entries as { path: string }[]).map((e) => path.basename(e.path));
    expect(names).toEqual(expect.arrayContaining(["calc.sh", "test.sh", ".gitignore"]));
    expect(names).not.toContain("secret.txt");
    expect(names).not.toContain(".git");

    // The failing test is a result, not an error.
    const red = await call(client, "workspace_exec", { workspace_id: id, command: "sh test.sh" });
    expect(red.error).toBe(false);
    expect(red.data).toMatchObject({ status: "completed", exit_code: 1, stdout: "FAIL\n" });

    const file = await call(client, "workspace_file_read", { workspace_id: id, path: "calc.sh" });
    expect(file.data.content).toContain("$1 - $2");
    const badPatch = await call(client, "workspace_patch_apply", {
      workspace_id: id,
      patch: "--- a/calc.sh\n+++ b/calc.sh\n@@ -1 +1 @@\n-nothing like this\n+x\n",
    });
    expect(badPatch.error).toBe(true);
    expect(badPatch.text).toMatch(/fix: read the file/);
    const patched = await call(client, "workspace_patch_apply", {
      workspace_id: id,
      patch:
        "--- a/calc.sh\n+++ b/calc.sh\n@@ -1 +1 @@\n-add() { echo $(( $1 - $2 )); }\n+add() { echo $(( $1 + $2 )); }\n",
    });
    expect(patched.error, patched.text).toBe(false);
    const green = await call(client, "workspace_exec", { workspace_id: id, command: "sh test.sh" });
    expect(green.data).toMatchObject({ exit_code: 0, stdout: "PASS\n" });

    const diff = await call(client, "workspace_diff", { workspace_id: id });
    expect(diff.data.changed).toBe(true);
    expect(diff.text).toContain("+add() { echo $(( $1 + $2 )); }");

    const summary = await call(client, "workspace_summary", { workspace_id: id });
    expect(summary.data).toMatchObject({
      commands: { total: 2, failed: 1 },
      origin_kind: "git",
    });
    expect((summary.data.patches as unknown[]).length).toBe(1);
    expect(summary.text).toContain("modified calc.sh");

    // A command longer than the call's wait comes back as a handle; nothing is lost.
    const slow = await call(client, "workspace_exec", {
      workspace_id: id,
      command: "echo started; sleep 3; echo finished",
      wait_seconds: 0.5,
    });
    expect(slow.data).toMatchObject({ status: "running" });
    const commandId = slow.data.command_id as string;
    const done = await call(client, "workspace_exec", {
      workspace_id: id,
      command_id: commandId,
      wait_seconds: 30,
    });
    expect(done.data).toMatchObject({
      status: "completed",
      command_id: commandId,
      exit_code: 0,
      stdout: "started\nfinished\n",
    });

    // Reset: /workspace back at the baseline, journal over.
    const reset = await call(client, "workspace_reset", { workspace_id: id });
    expect(reset.error, reset.text).toBe(false);
    const again = await call(client, "workspace_exec", { workspace_id: id, command: "sh test.sh" });
    expect(again.data).toMatchObject({ exit_code: 1, sequence: 1 });

    const deleted = await call(client, "workspace_delete", { workspace_id: id });
    expect(deleted.data).toMatchObject({ deleted: true });
    const listed = await call(client, "workspace_list", {});
    expect((listed.data.workspaces as { id: string }[]).map((w) => w.id)).not.toContain(id);
  });

  it("sends progress while exec waits, and says in both copies where output was cut", async () => {
    const client = await connect([]);
    const created = await call(client, "workspace_create", {});
    expect(created.error, created.text).toBe(false);
    const id = created.data.id as string;
    cleanups.push(() => void runCli(["workspace", "delete", id]));

    const heard: { progress: number; message?: string }[] = [];
    const slow = await call(
      client,
      "workspace_exec",
      { workspace_id: id, command: "sleep 5; echo done" },
      (p) => heard.push(p),
    );
    expect(slow.data).toMatchObject({ status: "completed", exit_code: 0, stdout: "done\n" });
    expect(heard.length).toBeGreaterThanOrEqual(1);
    for (let i = 1; i < heard.length; i++)
      expect(heard[i]!.progress).toBeGreaterThan(heard[i - 1]!.progress);
    expect(heard[0]!.message).toMatch(/running for \d+ s, no output yet/);

    // Big output: cut for the model, and the structured copy alone says so and how to read the rest.
    const lines = Math.ceil((OUTPUT_LIMITS.modelChars * 2) / 6);
    const big = await call(client, "workspace_exec", {
      workspace_id: id,
      command: `seq 1 ${lines}`,
    });
    expect(big.data).toMatchObject({ status: "completed", exit_code: 0, truncated: true });
    expect(big.data.stdout as string).toMatch(/\[stdout cut here: 24576 of \d+ characters shown/);
    const notes = big.data.notes as string[];
    expect(notes.join("\n")).toMatch(/stdout was cut .*sed -n/);
    for (const note of notes) expect(big.text).toContain(`note: ${note}`);

    const read = await call(client, "workspace_exec", {
      workspace_id: id,
      command: `seq 1 ${lines} > out.log`,
    });
    expect(read.data.exit_code).toBe(0);
    const file = await call(client, "workspace_file_read", {
      workspace_id: id,
      path: "out.log",
      max_bytes: 1000,
    });
    expect(file.data).toMatchObject({ truncated: true, bytes_read: 1000 });
    expect((file.data.notes as string[])[0]).toMatch(/tail -c \+1001 \/workspace\/out\.log/);
  });
});
