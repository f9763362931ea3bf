/**
 * pyro's tools as definitions for a function-calling API (OpenAI, Anthropic)
 * or as MCP lists them. They are read from a real server over an in-memory
 * link, so they are exactly what a chat host sees and cannot drift from it.
 * Calls then go to that server (or `pyro mcp serve`) as MCP tool calls.
 */
import { Client, InMemoryTransport } from "@modelcontextprotocol/client";
import type { Pyro } from "../index.js";
import { createMcpServer } from "./server.js";
import type { Mode, Profile } from "./catalog.js";

export const TOOL_FORMATS = ["mcp", "openai", "anthropic"] as const;
export type ToolFormat = (typeof TOOL_FORMATS)[number];

export interface ToolDefinitionOptions {
  profile?: Profile;
  mode?: Mode;
  /** Default environment named in descriptions (as `mcp serve --environment`). */
  environment?: string;
  /** "mcp" (default): as tools/list gives them; "openai": Chat Completions `tools`; "anthropic": Messages `tools`. */
  format?: ToolFormat;
}

/** An MCP tool as tools/list gives it. */
export interface McpToolDefinition {
  name: string;
  title?: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

export interface OpenAiToolDefinition {
  type: "function";
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

export interface AnthropicToolDefinition {
  name: string;
  description: string;
  input_schema: Record<string, unknown>;
}

export async function toolDefinitions(
  pyro: Pyro,
  options: ToolDefinitionOptions & { format: "openai" },
): Promise<OpenAiToolDefinition[]>;
export async function toolDefinitions(
  pyro: Pyro,
  options: ToolDefinitionOptions & { format: "anthropic" },
): Promise<AnthropicToolDefinition[]>;
export async function toolDefinitions(
  pyro: Pyro,
  options?: ToolDefinitionOptions & { format?: "mcp" },
): Promise<McpToolDefinition[]>;
export async function toolDefinitions(
  pyro: Pyro,
  options?: ToolDefinitionOptions,
): Promise<McpToolDefinition[] | OpenAiToolDefinition[] | AnthropicToolDefinition[]>;
export async function toolDefinitions(
  pyro: Pyro,
  options: ToolDefinitionOptions = {},
): Promise<McpToolDefinition[] | OpenAiToolDefinition[] | AnthropicToolDefinition[]> {
  const server = createMcpServer(pyro, {
    ...(options.profile ? { profile: options.profile } : {}),
    ...(options.mode ? { mode: options.mode } : {}),
    ...(options.environment ? { environment: options.environment } : {}),
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: "pyro-tool-definitions", version: "1" });
  await server.connect(serverSide);
  try {
    await client.connect(clientSide);
    const { tools } = await client.listTools();
    const listed = tools as McpToolDefinition[];
    switch (options.format ?? "mcp") {
      case "openai":
        return listed.map((tool) => ({
          type: "function" as const,
          function: {
            name: tool.name,
            description: tool.description ?? "",
            parameters: plainSchema(tool.inputSchema),
          },
        }));
      case "anthropic":
        return listed.map((tool) => ({
          name: tool.name,
          description: tool.description ?? "",
          input_schema: plainSchema(tool.inputSchema),
        }));
      default:
        return listed;
    }
  } finally {
    await client.close();
    await server.close();
  }
}

/** A JSON Schema without the `$schema` marker, which some function-calling APIs refuse. */
function plainSchema(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = schema;
  return rest;
}
