/**
 * The official MCP client against `pyro mcp serve` over stdio, as a chat
 * host runs it: for guest tests that drive the server tool by tool.
 */
import os from "node:os";
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { CLI } from "./helpers.js";

const clients: Client[] = [];

/** Start `pyro mcp serve ARGS` in `cwd` and connect to it. */
export async function connectMcp(args: string[], cwd = os.tmpdir()): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, "mcp", "serve", ...args],
    cwd,
    env: { ...(process.env as Record<string, string>) },
    stderr: "ignore",
  });
  const client = new Client({ name: "pyro-test", version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return client;
}

/** Close every client connected so far (call from afterEach). */
export async function closeMcpClients(): Promise<void> {
  for (const client of clients.splice(0)) await client.close().catch(() => {});
}

export type Structured = Record<string, unknown>;

/** Call a tool: whether it failed, its text, and its structured result. */
export async function callTool(
  client: Client,
  name: string,
  args: Record<string, unknown>,
  onprogress?: (progress: { progress: number; message?: string }) => void,
): Promise<{ error: boolean; text: string; data: Structured }> {
  const result = await client.callTool(
    { name, arguments: args },
    { timeout: 300_000, ...(onprogress ? { onprogress } : {}) },
  );
  const content = result.content as { type: string; text?: string }[];
  return {
    error: result.isError === true,
    text: content.map((c) => c.text ?? "").join("\n"),
    data: (result.structuredContent ?? {}) as Structured,
  };
}
