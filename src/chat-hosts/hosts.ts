/**
 * The chat hosts pyro knows, as data: where each keeps its MCP servers, how
 * an entry is spelled there, and which CLI registers one. Shapes checked
 * against the hosts themselves (Claude Code 2.1, Codex 0.171, OpenCode 1.18)
 * or their documented schemas (Cursor, VS Code, Claude Desktop).
 */
import os from "node:os";
import fs from "node:fs";
import path from "node:path";
import { MCP_TOKEN_ENV } from "../config/mcp-token.js";
import type { ServeOptions, ServerLaunch } from "./launch.js";

export const CONNECTABLE_HOSTS = ["claude-code", "codex", "opencode"] as const;
export const HOSTS = [...CONNECTABLE_HOSTS, "cursor", "vscode", "claude-desktop"] as const;
export type HostId = (typeof HOSTS)[number];
export type ConnectableHostId = (typeof CONNECTABLE_HOSTS)[number];

/** A server reached over pyro's local HTTP endpoint instead of started by the host. */
export interface HttpServer {
  url: string;
  token: string;
}

/** What a host's entry for pyro says, read back from its config. */
export type EntryRead =
  | { kind: "stdio"; launch: ServerLaunch; cwd?: string }
  | { kind: "http"; url: string }
  | { kind: "unknown" };

export interface HostCli {
  /** The executable on PATH. */
  binary: string;
  /** The npm package a user installs it from. */
  npmPackage: string;
  /**
   * Args that register a stdio server (replacing one of the same name where
   * the host allows); absent where pyro edits the config file instead.
   */
  add?(name: string, launch: ServerLaunch): string[];
  /** Args that remove it first, for hosts that refuse to replace (exit status ignored). */
  remove?(name: string): string[];
  /** Variables that keep the CLI offline and quiet. */
  env?: Record<string, string>;
}

export interface HostSpec {
  id: HostId;
  title: string;
  format: "json" | "toml";
  /** The user-level config file (it may not exist yet). */
  configFile(env: NodeJS.ProcessEnv): string;
  /** Where an entry sits in that file. */
  entryPath(name: string): string[];
  /** The entry for a server the host starts. */
  stdioEntry(launch: ServerLaunch): Record<string, unknown>;
  /** The entry for pyro's HTTP endpoint, or why the host cannot take one. */
  httpEntry(server: HttpServer): Record<string, unknown> | { unsupported: string };
  /** A whole config file holding only this entry (print-config, and new files). */
  document(name: string, entry: Record<string, unknown>): Record<string, unknown>;
  readEntry(entry: unknown): EntryRead;
  /** The host's own CLI, if pyro registers through it. */
  cli?: HostCli;
  /** Said after connecting: what the user should know about this host and these options. */
  note?(options: ServeOptions): string | undefined;
  /** The variables the host passes to a server it starts (all of the parent's when absent). */
  passesEnv?: readonly string[];
  /** The directory the host starts servers in, when not the user's. */
  serverCwd?(env: NodeJS.ProcessEnv): string;
}

function home(env: NodeJS.ProcessEnv): string {
  return env.HOME || os.homedir();
}

function xdgConfig(env: NodeJS.ProcessEnv): string {
  return env.XDG_CONFIG_HOME || path.join(home(env), ".config");
}

function codexHome(env: NodeJS.ProcessEnv): string {
  return env.CODEX_HOME || path.join(home(env), ".codex");
}

const bearer = (server: HttpServer) => ({ Authorization: `Bearer ${server.token}` });

/** The `{command, args, env}` most hosts share. */
const commandEntry = (launch: ServerLaunch) => ({
  command: launch.command,
  args: launch.args,
  env: launch.env,
});

const withEnv = (env: Record<string, string>) => (Object.keys(env).length ? { env } : {});

function envArgs(flag: string, env: Record<string, string>): string[] {
  return Object.entries(env).flatMap(([key, value]) => [flag, `${key}=${value}`]);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringArray(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === "string") ? value : undefined;
}

function stringRecord(value: unknown): Record<string, string> {
  if (!isRecord(value)) return {};
  return Object.fromEntries(
    Object.entries(value).filter((pair): pair is [string, string] => typeof pair[1] === "string"),
  );
}

/** `{command, args, env}` entries (Claude Code, Codex, Cursor, VS Code, Claude Desktop). */
function readCommandEntry(entry: unknown, envKey = "env"): EntryRead {
  if (!isRecord(entry)) return { kind: "unknown" };
  if (typeof entry.url === "string") return { kind: "http", url: entry.url };
  if (typeof entry.command !== "string") return { kind: "unknown" };
  return {
    kind: "stdio",
    launch: {
      command: entry.command,
      args: stringArray(entry.args) ?? [],
      env: stringRecord(entry[envKey]),
    },
    ...(typeof entry.cwd === "string" ? { cwd: entry.cwd } : {}),
  };
}

const claudeCode: HostSpec = {
  id: "claude-code",
  title: "Claude Code",
  format: "json",
  configFile: (env) => path.join(env.CLAUDE_CONFIG_DIR || home(env), ".claude.json"),
  entryPath: (name) => ["mcpServers", name],
  stdioEntry: (launch) => ({ type: "stdio", ...commandEntry(launch) }),
  httpEntry: (server) => ({ type: "http", url: server.url, headers: bearer(server) }),
  document: (name, entry) => ({ mcpServers: { [name]: entry } }),
  readEntry: (entry) => readCommandEntry(entry),
  cli: {
    binary: "claude",
    npmPackage: "@anthropic-ai/claude-code",
    // User scope: one entry for every project; the server finds the project from its working directory.
    add: (name, launch) => [
      "mcp",
      "add",
      "-s",
      "user",
      name,
      ...envArgs("-e", launch.env),
      "--",
      launch.command,
      ...launch.args,
    ],
    // `claude mcp add` refuses a name that exists.
    remove: (name) => ["mcp", "remove", "-s", "user", name],
    env: { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1", DISABLE_AUTOUPDATER: "1" },
  },
};

const codex: HostSpec = {
  id: "codex",
  title: "Codex",
  format: "toml",
  configFile: (env) => path.join(codexHome(env), "config.toml"),
  entryPath: (name) => ["mcp_servers", name],
  stdioEntry: (launch) => ({ command: launch.command, args: launch.args, ...withEnv(launch.env) }),
  // Codex refuses an inline token: it reads one from a variable of its own environment.
  httpEntry: (server) => ({ url: server.url, bearer_token_env_var: MCP_TOKEN_ENV }),
  document: (name, entry) => ({ mcp_servers: { [name]: entry } }),
  readEntry: (entry) => readCommandEntry(entry),
  // `codex mcp add` rewrites the other servers' tables too (it drops their
  // comments): pyro edits the file itself, writing the same table.
  cli: { binary: "codex", npmPackage: "@openai/codex" },
  note: (options) =>
    options.projectPath || options.repoUrl
      ? undefined
      : "Codex starts servers in ~/.codex, not in your project: give --project-path (or --repo-url) so new workspaces are seeded from your checkout.",
  passesEnv: ["HOME", "PATH", "LANG", "SHELL", "TERM", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"],
  serverCwd: codexHome,
};

/** OpenCode's global config: the first of its file names that exists. */
function opencodeConfig(env: NodeJS.ProcessEnv): string {
  const dir = path.join(xdgConfig(env), "opencode");
  const names = ["opencode.jsonc", "opencode.json", "config.json"];
  const found = names.find((name) => fs.existsSync(path.join(dir, name)));
  return path.join(dir, found ?? names[0]!);
}

const opencode: HostSpec = {
  id: "opencode",
  title: "OpenCode",
  format: "json",
  configFile: opencodeConfig,
  entryPath: (name) => ["mcp", name],
  stdioEntry: (launch) => ({
    type: "local",
    command: [launch.command, ...launch.args],
    ...(Object.keys(launch.env).length ? { environment: launch.env } : {}),
    enabled: true,
  }),
  httpEntry: (server) => ({
    type: "remote",
    url: server.url,
    headers: bearer(server),
    enabled: true,
  }),
  document: (name, entry) => ({
    $schema: "https://opencode.ai/config.json",
    mcp: { [name]: entry },
  }),
  readEntry: (entry) => {
    if (!isRecord(entry)) return { kind: "unknown" };
    if (typeof entry.url === "string") return { kind: "http", url: entry.url };
    const command = stringArray(entry.command);
    if (!command?.length) return { kind: "unknown" };
    return {
      kind: "stdio",
      launch: {
        command: command[0]!,
        args: command.slice(1),
        env: stringRecord(entry.environment),
      },
    };
  },
  // `opencode mcp add` has no remove, and it saves number-like arguments as
  // JSON numbers (an invalid config): pyro edits the file, keeping its comments.
  cli: { binary: "opencode", npmPackage: "opencode-ai" },
};

const cursor: HostSpec = {
  id: "cursor",
  title: "Cursor",
  format: "json",
  configFile: (env) => path.join(home(env), ".cursor", "mcp.json"),
  entryPath: (name) => ["mcpServers", name],
  stdioEntry: commandEntry,
  httpEntry: (server) => ({ url: server.url, headers: bearer(server) }),
  document: (name, entry) => ({ mcpServers: { [name]: entry } }),
  readEntry: (entry) => readCommandEntry(entry),
};

const vscode: HostSpec = {
  id: "vscode",
  title: "VS Code",
  format: "json",
  configFile: (env) => path.join(xdgConfig(env), "Code", "User", "mcp.json"),
  entryPath: (name) => ["servers", name],
  stdioEntry: (launch) => ({ type: "stdio", ...commandEntry(launch) }),
  httpEntry: (server) => ({ type: "http", url: server.url, headers: bearer(server) }),
  document: (name, entry) => ({ servers: { [name]: entry } }),
  readEntry: (entry) => readCommandEntry(entry),
};

const claudeDesktop: HostSpec = {
  id: "claude-desktop",
  title: "Claude Desktop",
  format: "json",
  configFile: (env) => path.join(xdgConfig(env), "Claude", "claude_desktop_config.json"),
  entryPath: (name) => ["mcpServers", name],
  stdioEntry: commandEntry,
  httpEntry: () => ({
    unsupported:
      "Claude Desktop's config file starts local servers only; use the stdio entry (without --http)",
  }),
  document: (name, entry) => ({ mcpServers: { [name]: entry } }),
  readEntry: (entry) => readCommandEntry(entry),
  note: () => "Restart Claude Desktop fully to load the new entry.",
};

export const HOST_SPECS: Record<HostId, HostSpec> = {
  "claude-code": claudeCode,
  codex,
  opencode,
  cursor,
  vscode,
  "claude-desktop": claudeDesktop,
};
