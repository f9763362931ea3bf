/**
 * An MCP session as a chat host runs it: start `pyro mcp serve` over stdio
 * with the official MCP client, list the tools of a mode, and work a
 * workspace through tool calls, reading each result's structuredContent.
 *
 *   node --import tsx examples/mcp-client.ts
 *
 * Needs `pyro` on PATH (`make install`), or PYRO_BIN naming it.
 */
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";

const client = new Client({ name: "pyro-example", version: "1.0.0" });
await client.connect(
  new StdioClientTransport({
    command: process.env.PYRO_BIN ?? "pyro",
    args: ["mcp", "serve", "--mode", "repro-fix"],
    // Outside any checkout, so new workspaces start empty.
    cwd: "/",
    stderr: "ignore",
  }),
);

async function call(name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
  const result = await client.callTool({ name, arguments: args });
  const text = (result.content as { type: string; text?: string }[]).map((c) => c.text).join("");
  if (result.isError) throw new Error(`${name} failed: ${text}`);
  return result.structuredContent as Record<string, unknown>;
}

try {
  const { tools } = await client.listTools();
  console.log(`repro-fix mode: ${tools.map((t) => t.name).join(", ")}`);

  const ws = await call("workspace_create", {});
  const id = ws.id as string;
  await call("workspace_file_write", {
    workspace_id: id,
    path: "hello.sh",
    text: "echo hello from $(uname -s)\n",
  });
  const ran = await call("workspace_exec", { workspace_id: id, command: "sh hello.sh" });
  console.log(`exit ${ran.exit_code}: ${String(ran.stdout).trim()}`);
  const summary = await call("workspace_summary", { workspace_id: id });
  const commands = summary.commands as { total: number; failed: number };
  console.log(`summary: ${commands.total} commands, ${commands.failed} failed`);
  await call("workspace_delete", { workspace_id: id });
} finally {
  await client.close();
}
