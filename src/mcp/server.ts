/**
 * `createMcpServer`: an MCP server (official SDK) exposing pyro's tools for
 * one surface (a profile, or a mode). Each tool returns structuredContent
 * (complete on its own) plus a readable text copy; failures a model can act
 * on are tool errors whose text names the fix. Calls report progress to a
 * client that sends a progress token.
 */
import { McpServer } from "@modelcontextprotocol/server";
import { DEFAULT_ENVIRONMENT, VERSION, type ProjectSource, type Pyro } from "../index.js";
import { surfaceFor, type Mode, type Profile, type Surface } from "./catalog.js";
import { toolErrorText } from "./errors.js";
import { serverInstructions } from "./instructions.js";
import { callProgress } from "./progress.js";
import type { ToolContext } from "./tool.js";
import { TOOLS } from "./tools/index.js";

export interface McpServerOptions {
  profile?: Profile;
  mode?: Mode;
  /** Default environment of workspace_create and vm_run. */
  environment?: string;
  /** Default seed of workspace_create (see `pyro.resolveProject`). */
  project?: ProjectSource;
  /**
   * False when the default environment is not built yet (the first create
   * will build it inside the call): the instructions say so.
   */
  environmentReady?: boolean;
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
    {
      instructions: serverInstructions(surface, options.project?.origin_ref, {
        environment: ctx.environment,
        ready: options.environmentReady ?? true,
      }),
    },
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
      async (args: unknown, extra) => {
        const progress = callProgress(extra, tool.name);
        try {
          const { payload, text } = await tool.call(args, ctx, progress);
          return { content: [{ type: "text" as const, text }], structuredContent: payload };
        } catch (error) {
          return {
            isError: true,
            content: [{ type: "text" as const, text: toolErrorText(error, surface) }],
          };
        } finally {
          progress.close();
        }
      },
    );
  }
  return server;
}
