/**
 * `createMcpServer`: an MCP server (official SDK) exposing pyro's tools for
 * one surface (a profile, or a mode). Each tool returns structuredContent
 * plus a compact text copy; failures a model can act on are tool errors
 * whose text names the fix.
 */
import { McpServer } from "@modelcontextprotocol/server";
import { DEFAULT_ENVIRONMENT, VERSION, type ProjectSource, type Pyro } from "../index.js";
import { surfaceFor, type Mode, type Profile, type Surface } from "./catalog.js";
import { toolErrorText } from "./errors.js";
import { serverInstructions } from "./instructions.js";
import type { ToolContext } from "./tool.js";
import { TOOLS } from "./tools/index.js";

export interface McpServerOptions {
  profile?: Profile;
  mode?: Mode;
  /** Default environment of workspace_create and vm_run. */
  environment?: string;
  /** Default seed of workspace_create (see `pyro.resolveProject`). */
  project?: ProjectSource;
}

export function createMcpServer(pyro: Pyro, options: McpServerOptions = {}): McpServer {
  const surface: Surface = surfaceFor(options.profile, options.mode);
  const ctx: ToolContext = {
    pyro,
    surface,
    environment: options.environment ?? DEFAULT_ENVIRONMENT,
    project: options.project,
  };
  const server = new McpServer(
    { name: "pyro", version: VERSION },
    { instructions: serverInstructions(surface, options.project?.origin_ref) },
  );
  for (const tool of TOOLS) {
    if (!surface.tools.includes(tool.name)) continue;
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description(ctx),
        inputSchema: tool.inputSchema(ctx),
        outputSchema: tool.output,
        annotations: { title: tool.title, ...tool.annotations },
      },
      async (args: unknown) => {
        try {
          const { payload, text } = await tool.call(args, ctx);
          return { content: [{ type: "text" as const, text }], structuredContent: payload };
        } catch (error) {
          return {
            isError: true,
            content: [{ type: "text" as const, text: toolErrorText(error, surface) }],
          };
        }
      },
    );
  }
  return server;
}
