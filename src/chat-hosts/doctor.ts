/**
 * `pyro host doctor`: per chat host, whether it is installed, whether pyro
 * is registered, and whether the registered command still starts and lists
 * its tools. pyro runs the handshake itself (as the host would: same
 * command, the environment the host passes, a bounded wait), because not
 * every host's own check starts the server (`codex mcp list` does not).
 */
import fs from "node:fs";
import path from "node:path";
import { findExecutable } from "../util/which.js";
import { readHostEntry } from "./connect.js";
import { CONNECTABLE_HOSTS, HOST_SPECS, type ConnectableHostId, type HostSpec } from "./hosts.js";
import {
  DEFAULT_SERVER_NAME,
  pyroInstall,
  readServeArgs,
  type ServeOptions,
  type ServerLaunch,
} from "./launch.js";

export type HostStatus = "healthy" | "broken" | "not_registered" | "not_installed" | "unchecked";

export interface HostCheck {
  host: ConnectableHostId;
  title: string;
  /** Where the host's CLI is, if it is on PATH. */
  installed: string | null;
  config_file: string;
  registered: boolean;
  status: HostStatus;
  /** The registered server, as the host starts it. */
  command?: string[];
  /** Tools the server listed in the handshake. */
  tools?: number;
  /** What the registered server seeds new workspaces from (contract §6). */
  seeds_from?: string;
  problem?: string;
  /** Something worth knowing that is not a failure (another pyro install, an HTTP entry). */
  note?: string;
  fix?: string;
}

export interface HostDoctorReport {
  ok: boolean;
  hosts: HostCheck[];
}

export interface HostDoctorOptions {
  name?: string;
  /** Bound on one server's start and tools/list (default 20 s). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export async function hostDoctor(options: HostDoctorOptions = {}): Promise<HostDoctorReport> {
  const env = options.env ?? process.env;
  const name = options.name ?? DEFAULT_SERVER_NAME;
  const hosts = await Promise.all(
    CONNECTABLE_HOSTS.map((host) => checkHost(HOST_SPECS[host], name, env, options.timeoutMs)),
  );
  return { ok: hosts.every((h) => h.status !== "broken"), hosts };
}

async function checkHost(
  spec: HostSpec,
  name: string,
  env: NodeJS.ProcessEnv,
  timeoutMs = 20_000,
): Promise<HostCheck> {
  const host = spec.id as ConnectableHostId;
  const installed = spec.cli ? (findExecutable(spec.cli.binary, env) ?? null) : null;
  const base = { host, title: spec.title, installed, config_file: spec.configFile(env) };
  let raw: unknown;
  try {
    raw = readHostEntry(spec, name, env);
  } catch (error) {
    return {
      ...base,
      registered: false,
      status: "broken",
      problem: (error as Error).message,
      fix: `fix or move ${base.config_file}, then: pyro host connect ${host}`,
    };
  }
  if (raw === undefined) {
    const cliMissing = spec.cli !== undefined && installed === null;
    return {
      ...base,
      registered: false,
      status: cliMissing ? "not_installed" : "not_registered",
      fix: cliMissing
        ? `install ${spec.title} (npm install -g ${spec.cli!.npmPackage}), then: pyro host connect ${host}`
        : `pyro host connect ${host}`,
    };
  }
  const read = spec.readEntry(raw);
  if (read.kind === "http") {
    return {
      ...base,
      registered: true,
      status: "unchecked",
      note: `registered over HTTP (${read.url}): pyro mcp serve --http must be running`,
    };
  }
  if (read.kind === "unknown") {
    return {
      ...base,
      registered: true,
      status: "broken",
      problem: `the ${name} entry has no command ${spec.title} can start`,
      fix: `pyro host repair ${host}`,
    };
  }
  const { launch } = read;
  const serve = readServeArgs(launch.args);
  const check: HostCheck = {
    ...base,
    registered: true,
    status: "healthy",
    command: [launch.command, ...launch.args],
    seeds_from: seedsFrom(spec, serve.options),
  };
  const problem = await handshake(spec, launch, read.cwd, env, timeoutMs).then(
    (tools) => {
      check.tools = tools;
      return undefined;
    },
    (error: Error) => error.message,
  );
  const dropped = serve.dropped;
  if (problem !== undefined) {
    return {
      ...check,
      status: "broken",
      problem: dropped.length
        ? `${problem} (flags this pyro does not take: ${dropped.join(", ")})`
        : problem,
      fix: `pyro host repair ${host}`,
    };
  }
  const here = pyroInstall();
  if (launch.args[0] !== here.cli || launch.command !== here.node) {
    check.note = `the entry runs another pyro (${launch.command} ${launch.args[0] ?? ""}); this one is ${here.node} ${here.cli}: \`pyro host repair ${host}\` points it here`;
  }
  return check;
}

/** Where a registered server's new workspaces come from, in words. */
function seedsFrom(spec: HostSpec, options: ServeOptions): string {
  if (options.repoUrl)
    return `a clone of ${options.repoUrl}${options.repoRef ? ` at ${options.repoRef}` : ""}`;
  if (options.projectPath) return `the checkout at ${options.projectPath}`;
  return spec.serverCwd
    ? `nothing: ${spec.title} starts servers in its own directory (connect with --project-path to seed from your checkout)`
    : `the git checkout ${spec.title} is started in (empty workspaces outside one)`;
}

/** Start the server as the host would and list its tools; the count, or why not. */
async function handshake(
  spec: HostSpec,
  launch: ServerLaunch,
  cwd: string | undefined,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<number> {
  // A bare name is found on PATH, as the host would find it.
  const command = path.isAbsolute(launch.command)
    ? launch.command
    : findExecutable(launch.command, env);
  if (!command || !fs.existsSync(command)) throw new Error(`${launch.command} does not exist`);
  const script = launch.args[0];
  if (script?.startsWith("/") && !fs.existsSync(script))
    throw new Error(`${script} does not exist`);
  // Loaded here: only `host doctor` needs an MCP client.
  const { Client } = await import("@modelcontextprotocol/client");
  const { StdioClientTransport } = await import("@modelcontextprotocol/client/stdio");
  const passed = spec.passesEnv
    ? Object.fromEntries(spec.passesEnv.flatMap((k) => (env[k] ? [[k, env[k]!]] : [])))
    : (env as Record<string, string>);
  const serverCwd = cwd ?? spec.serverCwd?.(env);
  const transport = new StdioClientTransport({
    command: launch.command,
    args: launch.args,
    env: { ...passed, ...launch.env },
    ...(serverCwd && fs.existsSync(serverCwd) ? { cwd: serverCwd } : {}),
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  const client = new Client({ name: "pyro-host-doctor", version: "1" });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer to initialize and tools/list in ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
  });
  try {
    const tools = await Promise.race([
      (async () => {
        await client.connect(transport);
        return (await client.listTools()).tools.length;
      })(),
      timeout,
    ]);
    return tools;
  } catch (error) {
    const said = lastLines(stderr);
    throw new Error(`${(error as Error).message}${said ? `; it said: ${said}` : ""}`);
  } finally {
    clearTimeout(timer);
    await client.close().catch(() => {});
  }
}

function lastLines(text: string): string {
  return text.trim().split("\n").slice(-3).join(" | ").slice(0, 400);
}
