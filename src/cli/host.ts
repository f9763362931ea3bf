/** `pyro host connect|print-config|doctor|repair`: chat-host onramps (contract §7). */
import { Argument, Command, Option } from "commander";
import {
  CONNECTABLE_HOSTS,
  ErrorCodes,
  HOSTS,
  MODES,
  mcpToken,
  PROFILES,
  PyroError,
  type ConnectableHostId,
  type ConnectOptions,
  type ConnectResult,
  type HostId,
} from "../index.js";
import { act, positiveInt, sdk } from "./common.js";
import { printJson } from "./output.js";
import { checkSurface, DEFAULT_HTTP_PORT } from "./mcp.js";

interface ServeFlags extends ConnectOptions {
  json?: boolean;
}

/** The `mcp serve` flags a registration carries, shared by connect and print-config. */
function addServeFlags(command: Command): Command {
  return command
    .addOption(
      new Option("--mode <mode>", "the server's mode (a narrower tool set)").choices(MODES),
    )
    .addOption(new Option("--profile <profile>", "the server's tool profile").choices(PROFILES))
    .option("--environment <env>", "default environment of workspace_create and vm_run")
    .option(
      "--project-path <path>",
      "seed new workspaces from this checkout (default: the directory the host starts pyro in)",
    )
    .option("--repo-url <url>", "seed new workspaces from a clone of this repository")
    .option("--repo-ref <ref>", "branch, tag or commit of --repo-url")
    .option("--name <name>", "the server's name in the host's config (default pyro)");
}

/** The flags as `mcp serve` takes them; a pair it would refuse is refused now, not at the host's start. */
function serveOptions(opts: ServeFlags): ConnectOptions {
  const { json: _json, ...rest } = opts;
  checkSurface(rest.profile, rest.mode);
  return rest;
}

function describeConnect(result: ConnectResult, verb: string): string {
  const how = result.cli_args ? `with \`${result.cli_args.slice(0, 3).join(" ")}\`` : "by editing";
  const lines = [
    `${verb} ${result.name} in ${result.title} (${how} ${result.config_file})`,
    `  command: ${[result.launch.command, ...result.launch.args].join(" ")}`,
  ];
  if (result.dropped?.length) lines.push(`  dropped: ${result.dropped.join(", ")}`);
  if (result.note) lines.push(`note: ${result.note}`);
  return lines.join("\n");
}

export function registerHostCommands(program: Command): void {
  const host = program.command("host").description("connect pyro to chat hosts and check them");

  addServeFlags(
    host
      .command("connect")
      .description(
        "register pyro's MCP server with a chat host (Claude Code through `claude mcp add`; Codex and OpenCode by editing their config in place, only pyro's entry)",
      )
      .addArgument(new Argument("<host>", "the chat host").choices(CONNECTABLE_HOSTS)),
  )
    .option("--json", "print as JSON")
    .action((name: ConnectableHostId, opts: ServeFlags) =>
      act(!!opts.json, async () => {
        const result = await sdk(!!opts.json).hosts.connect(name, serveOptions(opts));
        if (opts.json) printJson(result);
        else process.stdout.write(`${describeConnect(result, "connected")}\n`);
      }),
    );

  addServeFlags(
    host
      .command("print-config")
      .description("print (or write with --output) the exact config snippet for a chat host")
      .addArgument(new Argument("<host>", "the chat host").choices(HOSTS)),
  )
    .option("--http", "connect to `pyro mcp serve --http` (with its bearer token) instead")
    .option("--port <n>", `port of --http (default ${DEFAULT_HTTP_PORT})`, positiveInt("--port"))
    .option(
      "--output <file>",
      "write into FILE: a new file, or an existing config with only pyro's entry changed",
    )
    .option("--json", "print as JSON")
    .action((name: HostId, opts: ServeFlags & { http?: boolean; port?: number; output?: string }) =>
      act(!!opts.json, async () => {
        const { http, port, output, ...flags } = opts;
        if (!http && port !== undefined)
          throw new PyroError(ErrorCodes.UsageError, "--port needs --http");
        const serve = serveOptions(flags);
        if (
          http &&
          (serve.mode || serve.profile || serve.environment || serve.projectPath || serve.repoUrl)
        ) {
          throw new PyroError(
            ErrorCodes.UsageError,
            "with --http the server's flags belong to `pyro mcp serve --http`, not to the host",
            { hint: "start the server with them: pyro mcp serve --http --mode …" },
          );
        }
        const options = {
          ...serve,
          ...(http
            ? {
                http: {
                  url: `http://127.0.0.1:${port ?? DEFAULT_HTTP_PORT}/mcp`,
                  token: mcpToken().token,
                },
              }
            : {}),
        };
        const pyro = sdk(!!opts.json);
        const printed = output
          ? await pyro.hosts.writeConfig(name, output, options)
          : await pyro.hosts.printConfig(name, options);
        if (opts.json) printJson(printed);
        else if (output) process.stdout.write(`wrote ${printed.name} into ${output}\n`);
        else process.stdout.write(printed.text);
        if (!opts.json && process.stderr.isTTY) {
          if (!output) process.stderr.write(`# belongs in ${printed.config_file}\n`);
          if (printed.note) process.stderr.write(`# ${printed.note}\n`);
        }
      }),
    );

  host
    .command("doctor")
    .description(
      "per chat host: installed? pyro registered? does the registered command start and list its tools?",
    )
    .option("--name <name>", "the server's name in the hosts' configs (default pyro)")
    .option("--json", "print as JSON")
    .action((opts: { json?: boolean; name?: string }) =>
      act(!!opts.json, async () => {
        const report = await sdk(!!opts.json).hosts.doctor(opts.name ? { name: opts.name } : {});
        if (opts.json) {
          printJson(report);
        } else {
          const out: string[] = [];
          for (const check of report.hosts) {
            const label = {
              healthy: "ok  ",
              broken: "FAIL",
              not_registered: "note",
              not_installed: "note",
              unchecked: "note",
            }[check.status];
            const what = {
              healthy: `pyro starts and lists ${check.tools} tools`,
              broken: `registered, but ${check.problem}`,
              not_registered: "pyro is not registered",
              not_installed: "not installed",
              unchecked: "registered (not checked)",
            }[check.status];
            out.push(`${label} ${check.title}: ${what} (${check.config_file})`);
            if (check.seeds_from) out.push(`     seeds from: ${check.seeds_from}`);
            if (check.note) out.push(`     note: ${check.note}`);
            if (check.fix) out.push(`     fix: ${check.fix}`);
          }
          process.stdout.write(`${out.join("\n")}\n`);
        }
        return report.ok ? 0 : 1;
      }),
    );

  host
    .command("repair")
    .description(
      "rewrite a host's pyro entry for this install (moved install, removed flags); nothing else is touched",
    )
    .addArgument(new Argument("<host>", "the chat host").choices(CONNECTABLE_HOSTS))
    .option("--name <name>", "the server's name in the host's config (default pyro)")
    .option("--json", "print as JSON")
    .action((name: ConnectableHostId, opts: { json?: boolean; name?: string }) =>
      act(!!opts.json, async () => {
        const result = await sdk(!!opts.json).hosts.repair(
          name,
          opts.name ? { name: opts.name } : {},
        );
        if (opts.json) printJson(result);
        else process.stdout.write(`${describeConnect(result, "repaired")}\n`);
      }),
    );
}
