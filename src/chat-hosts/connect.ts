/**
 * `pyro host connect|repair|print-config`: register pyro's MCP server with a
 * chat host the way the host does it itself (its CLI where it has a usable
 * one, else its config file, edited in place), and print the snippet for
 * any host. Each operation first plans what it writes, then writes it.
 */
import { execFile } from "node:child_process";
import { ErrorCodes, PyroError } from "../errors.js";
import { findExecutable } from "../util/which.js";
import {
  parseConfig,
  readConfigText,
  renderConfig,
  valueAt,
  withEntry,
  writeConfig,
} from "./config-files.js";
import {
  HOST_SPECS,
  type ConnectableHostId,
  type HostId,
  type HostSpec,
  type HttpServer,
} from "./hosts.js";
import {
  checkServerName,
  DEFAULT_SERVER_NAME,
  readServeArgs,
  serverLaunch,
  type ServeOptions,
  type ServerLaunch,
} from "./launch.js";

export interface ConnectOptions extends ServeOptions {
  /** The server's name in the host's config (default "pyro"). */
  name?: string;
}

export interface ConnectResult {
  host: HostId;
  title: string;
  name: string;
  config_file: string;
  /** How it was written: through the host's CLI (the command run) or by editing the file. */
  method: "cli" | "file";
  cli_args?: string[];
  /** Whether an entry of that name was there before. */
  replaced: boolean;
  launch: ServerLaunch;
  entry: Record<string, unknown>;
  /** `repair` only: flags of the old entry this pyro no longer takes. */
  dropped?: string[];
  note?: string;
}

/** Register pyro with a host (replacing an entry of the same name). */
export async function connectHost(
  host: ConnectableHostId,
  options: ConnectOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<ConnectResult> {
  const spec = HOST_SPECS[host];
  const name = checkServerName(options.name ?? DEFAULT_SERVER_NAME);
  const launch = serverLaunch(options, env);
  return register(spec, name, launch, env, spec.note?.(options));
}

/** Rewrite a host's pyro entry for this install, keeping the flags that still work. */
export async function repairHost(
  host: ConnectableHostId,
  options: { name?: string } = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<ConnectResult> {
  const spec = HOST_SPECS[host];
  const name = checkServerName(options.name ?? DEFAULT_SERVER_NAME);
  const entry = readHostEntry(spec, name, env);
  if (entry === undefined) {
    throw new PyroError(
      ErrorCodes.HostNotRegistered,
      `${spec.title} has no MCP server named ${name} in ${spec.configFile(env)}`,
      { hint: `connect it first: pyro host connect ${host}` },
    );
  }
  const read = spec.readEntry(entry);
  if (read.kind === "http") {
    throw new PyroError(
      ErrorCodes.UsageError,
      `${spec.title}'s ${name} entry connects to ${read.url} over HTTP: repair rewrites only entries that start pyro`,
      {
        hint: `check that \`pyro mcp serve --http\` runs there, or replace the entry: pyro host connect ${host}`,
      },
    );
  }
  const args = read.kind === "stdio" ? readServeArgs(read.launch.args) : undefined;
  const kept = args?.options ?? {};
  const result = await register(spec, name, serverLaunch(kept, env), env, spec.note?.(kept));
  return { ...result, dropped: args?.dropped ?? [] };
}

/** The raw entry of server `name` in a host's config file, if there is one. */
export function readHostEntry(
  spec: HostSpec,
  name: string,
  env: NodeJS.ProcessEnv,
): unknown | undefined {
  const file = spec.configFile(env);
  const text = readConfigText(file);
  if (text === undefined) return undefined;
  return valueAt(parseConfig(file, spec.format, text), spec.entryPath(name));
}

async function register(
  spec: HostSpec,
  name: string,
  launch: ServerLaunch,
  env: NodeJS.ProcessEnv,
  note: string | undefined,
): Promise<ConnectResult> {
  const file = spec.configFile(env);
  const entry = spec.stdioEntry(launch);
  const previous = readHostEntry(spec, name, env);
  const replaced = previous !== undefined;
  const binary = spec.cli?.add ? findExecutable(spec.cli.binary, env) : undefined;
  let cliArgs: string[] | undefined;
  if (spec.cli?.add && binary) {
    cliArgs = spec.cli.add(name, launch);
    try {
      if (replaced && spec.cli.remove)
        await runHostCli(spec, binary, spec.cli.remove(name), env, true);
      await runHostCli(spec, binary, cliArgs, env, false);
      // The host's CLI wrote it; pyro checks it wrote what was asked, where doctor looks.
      const written = spec.readEntry(readHostEntry(spec, name, env));
      if (written.kind !== "stdio" || !sameLaunch(written.launch, launch)) {
        throw new PyroError(
          ErrorCodes.HostCommandFailed,
          `${spec.cli.binary} ${cliArgs.slice(0, 2).join(" ")} did not write the entry to ${file}`,
          { hint: `write it by hand: pyro host print-config ${spec.id}` },
        );
      }
    } catch (error) {
      // The remove went through but the add did not: the user keeps what they had.
      if (previous !== undefined && readHostEntry(spec, name, env) === undefined) {
        restoreEntry(spec, name, previous, env);
      }
      throw error;
    }
  } else {
    const text = readConfigText(file);
    const keys = spec.entryPath(name);
    writeConfig(file, withEntry(file, spec.format, text, keys, entry, spec.document(name, entry)));
  }
  return {
    host: spec.id,
    title: spec.title,
    name,
    config_file: file,
    method: cliArgs ? "cli" : "file",
    ...(cliArgs ? { cli_args: [spec.cli!.binary, ...cliArgs] } : {}),
    replaced,
    launch,
    entry,
    ...(note ? { note } : {}),
  };
}

function restoreEntry(spec: HostSpec, name: string, entry: unknown, env: NodeJS.ProcessEnv): void {
  if (typeof entry !== "object" || entry === null) return;
  const file = spec.configFile(env);
  const value = entry as Record<string, unknown>;
  const text = readConfigText(file);
  writeConfig(
    file,
    withEntry(file, spec.format, text, spec.entryPath(name), value, spec.document(name, value)),
  );
}

function sameLaunch(a: ServerLaunch, b: ServerLaunch): boolean {
  return (
    a.command === b.command &&
    JSON.stringify(a.args) === JSON.stringify(b.args) &&
    JSON.stringify(Object.entries(a.env).sort()) === JSON.stringify(Object.entries(b.env).sort())
  );
}

const HOST_CLI_TIMEOUT_MS = 60_000;
const HOST_CLI_OUTPUT_BYTES = 64 * 1024;

function runHostCli(
  spec: HostSpec,
  binary: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  mayFail: boolean,
): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      binary,
      args,
      {
        env: { ...env, ...spec.cli?.env },
        timeout: HOST_CLI_TIMEOUT_MS,
        maxBuffer: HOST_CLI_OUTPUT_BYTES,
        encoding: "utf8",
      },
      (error, _stdout, stderr) => {
        if (!error || mayFail) return resolve();
        const said = stderr.trim().split("\n").slice(-3).join(" ").slice(0, 500);
        reject(
          new PyroError(
            ErrorCodes.HostCommandFailed,
            `${spec.cli!.binary} ${args.slice(0, 2).join(" ")} failed${said ? `: ${said}` : ""}`,
            {
              hint: `check that ${spec.cli!.binary} works, or write the entry by hand: pyro host print-config ${spec.id}`,
            },
          ),
        );
      },
    ).stdin?.end();
  });
}

export interface PrintConfigOptions extends ConnectOptions {
  /** Connect to a running `pyro mcp serve --http` instead of starting a server. */
  http?: HttpServer;
}

export interface PrintedConfig {
  host: HostId;
  title: string;
  format: "json" | "toml";
  name: string;
  /** The snippet: a whole config holding only pyro. */
  text: string;
  /** The user-level file it belongs in. */
  config_file: string;
  entry: Record<string, unknown>;
  note?: string;
}

/** The exact config a host needs for pyro (nothing is written). */
export function printConfig(
  host: HostId,
  options: PrintConfigOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): PrintedConfig {
  const spec = HOST_SPECS[host];
  const name = checkServerName(options.name ?? DEFAULT_SERVER_NAME);
  const entry = entryFor(spec, options, env);
  let text = renderConfig(spec.format, spec.document(name, entry));
  const notes = [options.http ? undefined : spec.note?.(options)];
  if (options.http && spec.format === "toml") {
    notes.push(`Codex reads the token from $PYRO_MCP_TOKEN: export it where Codex starts.`);
    text = `# export PYRO_MCP_TOKEN before starting Codex (the token of pyro mcp serve --http)\n${text}`;
  }
  const note = notes.filter(Boolean).join(" ");
  return {
    host,
    title: spec.title,
    format: spec.format,
    name,
    text,
    config_file: spec.configFile(env),
    entry,
    ...(note ? { note } : {}),
  };
}

/** Write that config into FILE: a new file, or an existing one with only pyro's entry changed. */
export function writeConfigTo(
  host: HostId,
  file: string,
  options: PrintConfigOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): PrintedConfig {
  const printed = printConfig(host, options, env);
  const spec = HOST_SPECS[host];
  const keys = spec.entryPath(printed.name);
  const text = readConfigText(file);
  writeConfig(
    file,
    withEntry(
      file,
      spec.format,
      text,
      keys,
      printed.entry,
      spec.document(printed.name, printed.entry),
    ),
    { secret: options.http !== undefined },
  );
  return { ...printed, config_file: file };
}

function entryFor(
  spec: HostSpec,
  options: PrintConfigOptions,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  if (!options.http) return spec.stdioEntry(serverLaunch(options, env));
  const entry = spec.httpEntry(options.http);
  if ("unsupported" in entry) {
    throw new PyroError(ErrorCodes.UsageError, String(entry.unsupported));
  }
  return entry;
}
