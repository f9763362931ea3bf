/**
 * `createMcpServer`: an MCP server (official SDK) exposing pyro's tools for
 * one surface (a profile, or a mode). Each tool returns structuredContent
 * plus a compact text copy; failures a model can act on are tool errors
 * whose text names the fix.
 */
import { McpServer } from "@modelcontextprotocol/server";
import type { Pyro } from "../sdk/pyro.js";
import { DEFAULT_ENVIRONMENT } from "../environments/catalog.js";
import type { ProjectSource } from "../workspaces/project.js";
import { VERSION } from "../version.js";
import { DEFAULT_PROFILE, surfaceFor, type Mode, type Profile, type Surface } from "./catalog.js";
import { toolErrorText } from "./errors.js";
import { ExecJobs } from "./exec-jobs.js";
import { serverInstructions } from "./instructions.js";
import { TOOLS, type ToolContext } from "./tools.js";

export interface McpServerOptions {
  profile?: Profile;
  mode?: Mode;
  /** Default environment of workspace_create and vm_run. */
  environment?: string;
  /** Default seed of workspace_create (see resolveProject). */
  project?: ProjectSource;
  /** Commands running past a tool call; share one between servers of the same process (HTTP). */
  jobs?: ExecJobs;
}

export function createPyroMcpServer(pyro: Pyro, options: McpServerOptions = {}): McpServer {
  const surface: Surface = surfaceFor(options.profile ?? DEFAULT_PROFILE, options.mode);
  const ctx: ToolContext = {
    pyro,
    surface,
    environment: options.environment ?? DEFAULT_ENVIRONMENT,
    project: options.project,
    jobs: options.jobs ?? new ExecJobs(),
  };
  const server = new McpServer(
    { name: "pyro", version: VERSION },
    { instructions: serverInstructions(surface, options.project?.origin_ref) },
  );
  for (const spec of TOOLS) {
    if (!surface.tools.includes(spec.name)) continue;
    server.registerTool(
      spec.name,
      {
        title: spec.title,
        description: spec.description(ctx),
        inputSchema: spec.input(ctx),
        outputSchema: spec.output,
        annotations: { title: spec.title, ...spec.annotations },
      },
      async (args: Record<string, unknown>) => {
        try {
          const { payload, text } = await spec.run(args, ctx);
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
