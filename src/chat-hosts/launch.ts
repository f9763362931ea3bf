/**
 * How a chat host starts pyro's MCP server: an absolute Node, an absolute
 * dist/cli.js and `mcp serve` flags. Absolute, because hosts start servers
 * from their own directory with their own PATH (Claude Desktop inherits no
 * shell PATH; Codex passes only a few variables). Also the reverse: the
 * options an existing entry was registered with, for `host repair`.
 */
import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, PyroError } from "../errors.js";
import { MODES, PROFILES, type Mode, type Profile } from "../surfaces.js";
import { fileURLToPath } from "node:url";

/** What a host's pyro entry asks `pyro mcp serve` for. */
export interface ServeOptions {
  mode?: Mode;
  profile?: Profile;
  environment?: string;
  projectPath?: string;
  repoUrl?: string;
  repoRef?: string;
}

/** A stdio server as every host config spells it: a command, its args, extra env. */
export interface ServerLaunch {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** The server's name in hosts' configs unless told otherwise. */
export const DEFAULT_SERVER_NAME = "pyro";
const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function checkServerName(name: string): string {
  if (!NAME_PATTERN.test(name)) {
    throw new PyroError(ErrorCodes.UsageError, `server name ${JSON.stringify(name)} is not valid`, {
      hint: "use 1-64 letters, digits, '-' or '_' (hosts accept no other names)",
    });
  }
  return name;
}

/** The files this pyro runs from: Node and the package's dist/cli.js, both absolute and real. */
export function pyroInstall(): { node: string; cli: string } {
  return { node: fs.realpathSync(process.execPath), cli: fs.realpathSync(cliEntry()) };
}

/** `pyro`'s own entry (the package's bin), found from this module up to the package root. */
function cliEntry(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, "dist", "cli.js");
    if (fs.existsSync(path.join(dir, "package.json")) && fs.existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new PyroError(ErrorCodes.HostRequirementMissing, "pyro's CLI (dist/cli.js) is missing", {
    hint: "run `npm run build` in the pyro checkout",
  });
}

/** Variables pyro reads that a host may not pass on (Codex passes only a few): carried in the entry. */
const CARRIED_ENV = ["PYRO_HOME"] as const;

export function serverLaunch(
  options: ServeOptions,
  env: NodeJS.ProcessEnv = process.env,
): ServerLaunch {
  const { node, cli } = pyroInstall();
  const carried: Record<string, string> = {};
  for (const name of CARRIED_ENV) {
    const value = env[name];
    if (value) carried[name] = path.resolve(value);
  }
  return { command: node, args: [cli, ...serveArgs(options)], env: carried };
}

/** `mcp serve` and its flags, in a fixed order. */
export function serveArgs(options: ServeOptions): string[] {
  checkServeOptions(options);
  const args = ["mcp", "serve"];
  if (options.profile) args.push("--profile", options.profile);
  if (options.mode) args.push("--mode", options.mode);
  if (options.environment) args.push("--environment", options.environment);
  if (options.projectPath) args.push("--project-path", path.resolve(options.projectPath));
  if (options.repoUrl) args.push("--repo-url", options.repoUrl);
  if (options.repoRef) args.push("--repo-ref", options.repoRef);
  return args;
}

function checkServeOptions(options: ServeOptions): void {
  if (options.mode && !(MODES as readonly string[]).includes(options.mode))
    throw new PyroError(ErrorCodes.UsageError, `unknown mode ${options.mode}`, {
      hint: `modes: ${MODES.join(", ")}`,
    });
  if (options.profile && !(PROFILES as readonly string[]).includes(options.profile))
    throw new PyroError(ErrorCodes.UsageError, `unknown profile ${options.profile}`, {
      hint: `profiles: ${PROFILES.join(", ")}`,
    });
  if (options.projectPath && options.repoUrl)
    throw new PyroError(ErrorCodes.UsageError, "give --project-path or --repo-url, not both");
  if (options.repoRef && !options.repoUrl)
    throw new PyroError(ErrorCodes.UsageError, "--repo-ref needs --repo-url");
  if (options.projectPath) {
    const dir = path.resolve(options.projectPath);
    if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory())
      throw new PyroError(ErrorCodes.UsageError, `--project-path ${dir} is not a directory`, {
        hint: "give the path of a checkout on this machine",
      });
  }
}

/** What an existing entry's args say, and what of them `mcp serve` no longer takes. */
export interface ReadArgs {
  /** Whether the args run `mcp serve` at all. */
  serve: boolean;
  options: ServeOptions;
  /** Flags or values dropped because this pyro does not know them. */
  dropped: string[];
}

const VALUE_FLAGS: Record<string, keyof ServeOptions> = {
  "--mode": "mode",
  "--profile": "profile",
  "--environment": "environment",
  "--project-path": "projectPath",
  "--repo-url": "repoUrl",
  "--repo-ref": "repoRef",
};

/** Read `mcp serve` flags back from an entry's args (after the CLI path). */
export function readServeArgs(args: readonly string[]): ReadArgs {
  const at = args.findIndex((arg, i) => arg === "mcp" && args[i + 1] === "serve");
  const options: ServeOptions = {};
  const dropped: string[] = [];
  if (at < 0) return { serve: false, options, dropped };
  const rest = args.slice(at + 2);
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? arg.split(/=(.*)/s) : [arg];
    const key = VALUE_FLAGS[flag!];
    if (!key) {
      dropped.push(arg);
      continue;
    }
    const value = inline ?? rest[++i];
    if (value === undefined) {
      dropped.push(arg);
      continue;
    }
    if (key === "mode" && !(MODES as readonly string[]).includes(value)) {
      dropped.push(`${flag} ${value}`);
      continue;
    }
    if (key === "profile" && !(PROFILES as readonly string[]).includes(value)) {
      dropped.push(`${flag} ${value}`);
      continue;
    }
    (options as Record<string, string>)[key] = value;
  }
  if (options.projectPath && !fs.statSync(options.projectPath, { throwIfNoEntry: false })) {
    dropped.push(`--project-path ${options.projectPath}`);
    delete options.projectPath;
  }
  if (options.repoRef && !options.repoUrl) {
    dropped.push(`--repo-ref ${options.repoRef}`);
    delete options.repoRef;
  }
  return { serve: true, options, dropped };
}
