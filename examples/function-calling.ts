/**
 * pyro's tools for a function-calling API instead of an MCP host: export the
 * definitions of a mode in Anthropic's (or OpenAI's) format, hand them to
 * the model with your request, and run each tool call the model makes
 * against a pyro MCP server, sending back its structuredContent.
 *
 *   node --import tsx examples/function-calling.ts
 *
 * No network: the "model" here is a scripted reply with the tool calls a
 * model would make. Swap in your API client where marked. The same
 * definitions come from the CLI: `pyro mcp tools --mode repro-fix --format anthropic`.
 */
import { Client, InMemoryTransport } from "@modelcontextprotocol/client";
import { Pyro } from "pyro-mcp";
import { createMcpServer, toolDefinitions } from "pyro-mcp/mcp";

const pyro = new Pyro();
const tools = await toolDefinitions(pyro, { mode: "repro-fix", format: "anthropic" });
const request = {
  model: "your-model",
  max_tokens: 1024,
  tools,
  messages: [{ role: "user", content: "Create a workspace and show me the kernel version." }],
};
console.log(
  `request: ${tools.length} tools (${tools.map((t) => t.name).join(", ")}), ${JSON.stringify(request).length} bytes`,
);

// The server that runs the calls: in this process here; `pyro mcp serve` works the same.
const server = createMcpServer(pyro, { mode: "repro-fix" });
const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
await server.connect(serverSide);
const client = new Client({ name: "function-calling-example", version: "1.0.0" });
await client.connect(clientSide);

/** Run one tool_use block; the tool_result block to send back to the model. */
async function runToolUse(block: { id: string; name: string; input: Record<string, unknown> }) {
  const result = await client.callTool({ name: block.name, arguments: block.input });
  return {
    type: "tool_result" as const,
    tool_use_id: block.id,
    is_error: result.isError === true,
    // Some hosts show the model only structured results: they are complete on their own.
    content: JSON.stringify(result.structuredContent ?? result.content),
  };
}

try {
  // What a model would answer to `request`, turn by turn (replace with your API client).
  const created = await runToolUse({ id: "t1", name: "workspace_create", input: {} });
  const id = JSON.parse(created.content).id as string;
  console.log(`tool_result t1: created ${id}`);
  const ran = await runToolUse({
    id: "t2",
    name: "workspace_exec",
    input: { workspace_id: id, command: "uname -r" },
  });
  const exec = JSON.parse(ran.content) as { exit_code: number; stdout: string };
  console.log(`tool_result t2: exit ${exec.exit_code}, kernel ${exec.stdout.trim()}`);
  await runToolUse({ id: "t3", name: "workspace_delete", input: { workspace_id: id } });
} finally {
  await client.close();
  await server.close();
}
