/** `pyro mcp serve`: the MCP server for chat hosts, over stdio or local HTTP. */
import { Command, Option } from "commander";
import {
  DEFAULT_ENVIRONMENT,
  ErrorCodes,
  MCP_TOKEN_ENV,
  mcpToken,
  Pyro,
  PyroError,
} from "../index.js";
import {
  DEFAULT_PROFILE,
  MODES,
  PROFILES,
  surfaceFor,
  type Mode,
  type Profile,
} from "../mcp/catalog.js";
import { coldEnvironmentNote } from "../mcp/instructions.js";
import { act, positiveInt } from "./common.js";

interface ServeOptions {
  profile?: Profile;
  mode?: Mode;
  environment?: string;
  projectPath?: string;
  repoUrl?: string;
  repoRef?: string;
  http?: boolean;
  port?: number;
}

export const DEFAULT_HTTP_PORT = 8765;

/** A profile and a mode with no tool in common make no server. */
export function checkSurface(profile: Profile | undefined, mode: Mode | undefined): void {
  if (mode && profile && surfaceFor(profile, mode).tools.length === 0) {
    throw new PyroError(
      ErrorCodes.UsageError,
      `mode ${mode} has no tools within profile ${profile}`,
      {
        hint: "a mode narrows the profile: give a larger profile, or the mode alone",
      },
    );
  }
}

export function registerMcpCommands(program: Command): void {
  const mcp = program.command("mcp").description("the MCP server for chat hosts");
  mcp
    .command("tools")
    .description(
      "print the tools a server would offer, as MCP lists them or as function-calling definitions (JSON)",
    )
    .addOption(
      new Option("--profile <profile>", `tool set (default ${DEFAULT_PROFILE})`).choices(PROFILES),
    )
    .addOption(new Option("--mode <mode>", "a narrower tool set for one job").choices(MODES))
    .option("--environment <env>", "default environment named in the descriptions")
    .addOption(
      new Option(
        "--format <format>",
        "mcp (tools/list), openai (Chat Completions tools) or anthropic (Messages tools)",
      )
        .choices(["mcp", "openai", "anthropic"])
        .default("mcp"),
    )
    .action(
      (opts: {
        profile?: Profile;
        mode?: Mode;
        environment?: string;
        format: "mcp" | "openai" | "anthropic";
      }) =>
        act(true, async () => {
          checkSurface(opts.profile, opts.mode);
          // Loaded here, so plain CLI commands never load the MCP SDK.
          const { toolDefinitions } = await import("../mcp/index.js");
          const tools = await toolDefinitions(new Pyro(), opts);
          process.stdout.write(`${JSON.stringify(tools, null, 2)}\n`);
        }),
    );
  mcp
    .command("serve")
    .description(
      "serve pyro's tools over MCP (stdio by default). Started inside a git checkout, new workspaces are seeded from it.",
    )
    .addOption(
      new Option("--profile <profile>", `tool set (default ${DEFAULT_PROFILE})`).choices(PROFILES),
    )
    .addOption(
      new Option(
        "--mode <mode>",
        "a narrower tool set and instructions for one job (with --profile: narrowed to that profile too)",
      ).choices(MODES),
    )
    .option("--environment <env>", "default environment of workspace_create and vm_run")
    .option("--project-path <path>", "seed new workspaces from this checkout")
    .option(
      "--repo-url <url>",
      "seed new workspaces from a clone of this repository (cloned on the host)",
    )
    .option("--repo-ref <ref>", "branch, tag or commit of --repo-url")
    .option("--http", "serve Streamable HTTP on 127.0.0.1 instead of stdio")
    .option("--port <n>", `port for --http (default ${DEFAULT_HTTP_PORT}; 0 picks one)`, (v) =>
      v === "0" ? 0 : positiveInt("--port")(v),
    )
    .action((opts: ServeOptions) =>
      act(false, async () => {
        checkSurface(opts.profile, opts.mode);
        if (opts.port !== undefined && !opts.http)
          throw new PyroError(ErrorCodes.UsageError, "--port needs --http");
        // stdout is the protocol channel under stdio: progress goes nowhere.
        const pyro = new Pyro();
        // A cold cache means the first create builds inside a tool call: say so now (an unknown name fails here).
        const environment = opts.environment ?? DEFAULT_ENVIRONMENT;
        const environmentReady = (await pyro.environments.status(environment)).installed;
        const project = await pyro.resolveProject({
          cwd: process.cwd(),
          ...(opts.projectPath ? { projectPath: opts.projectPath } : {}),
          ...(opts.repoUrl ? { repoUrl: opts.repoUrl } : {}),
          ...(opts.repoRef ? { repoRef: opts.repoRef } : {}),
        });
        try {
          // Loaded here, so plain CLI commands never load the MCP SDK.
          const { createMcpServer, serveOverHttp, serveOverStdio } =
            await import("../mcp/index.js");
          const factory = () =>
            createMcpServer(pyro, {
              ...(opts.profile ? { profile: opts.profile } : {}),
              ...(opts.mode ? { mode: opts.mode } : {}),
              ...(opts.environment ? { environment: opts.environment } : {}),
              ...(project ? { project } : {}),
              environmentReady,
            });
          const surface = surfaceFor(opts.profile, opts.mode);
          const pending = surface.pending.map((p) => p.tool);
          const about =
            `pyro mcp: ${opts.mode ? `mode ${opts.mode}${opts.profile ? ` within profile ${opts.profile}` : ""}` : `profile ${surface.profile}`}, ${surface.tools.length} tools` +
            (pending.length ? ` (not yet available: ${pending.join(", ")})` : "") +
            (project
              ? `; seeding from ${project.origin_ref}`
              : "; no project: workspaces start empty") +
            (environmentReady ? "" : `\nnote: ${coldEnvironmentNote(environment)}`);
          if (opts.http) {
            const token = mcpToken();
            const serving = await serveOverHttp(factory, {
              port: opts.port ?? DEFAULT_HTTP_PORT,
              token: token.token,
            });
            const where = token.source === "env" ? `$${MCP_TOKEN_ENV}` : token.file;
            process.stderr.write(
              `${about}\nlistening on ${serving.url} (bearer token required: ${where}; ` +
                "`pyro host print-config HOST --http` shows how a host sends it)\n",
            );
            await new Promise<void>((resolve) => {
              process.once("SIGINT", resolve);
              process.once("SIGTERM", resolve);
            });
            await serving.close();
          } else {
            process.stderr.write(`${about}\n`);
            await serveOverStdio(factory);
          }
        } finally {
          project?.cleanup();
        }
      }),
    );
}
