/**
 * The bearer token of `pyro mcp serve --http`. Any local process can reach a
 * port on 127.0.0.1, and the server creates workspaces from host paths and
 * exports into them: so a token is always required. It comes from
 * PYRO_MCP_TOKEN, else from an owner-only file that pyro creates once.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, PyroError } from "../errors.js";
import { ensurePrivateDir, resolvePaths, writeFileAtomic } from "./paths.js";

export interface McpToken {
  token: string;
  /** Where it came from: the environment variable, or the file (its path). */
  source: "env" | "file";
  file?: string;
}

export const MCP_TOKEN_ENV = "PYRO_MCP_TOKEN";
const MIN_TOKEN_CHARS = 16;

export function mcpTokenFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(resolvePaths(env).data, "mcp-token");
}

/** The token to require (and to hand to hosts), creating the file on first use. */
export function mcpToken(env: NodeJS.ProcessEnv = process.env): McpToken {
  const fromEnv = env[MCP_TOKEN_ENV];
  if (fromEnv) {
    if (fromEnv.length < MIN_TOKEN_CHARS || /\s/.test(fromEnv)) {
      throw new PyroError(
        ErrorCodes.UsageError,
        `${MCP_TOKEN_ENV} must be at least ${MIN_TOKEN_CHARS} characters, without spaces`,
        { hint: `unset ${MCP_TOKEN_ENV} to use the token pyro generates (${mcpTokenFile(env)})` },
      );
    }
    return { token: fromEnv, source: "env" };
  }
  const file = mcpTokenFile(env);
  let token = readTokenFile(file);
  if (token === undefined) {
    ensurePrivateDir(path.dirname(file));
    createOnce(file, `${randomBytes(32).toString("base64url")}\n`);
    // Whoever created it first wins: every caller uses the token that is in the file.
    token = readTokenFile(file)!;
  }
  return { token, source: "file", file };
}

/** Write a whole file unless one is there already (two first starts must not make two tokens). */
function createOnce(file: string, content: string): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  writeFileAtomic(tmp, content, 0o600);
  try {
    fs.linkSync(tmp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function readTokenFile(file: string): string | undefined {
  let text: string;
  try {
    const stat = fs.statSync(file);
    // A token others can read protects nothing: tighten it before use.
    if ((stat.mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
    text = fs.readFileSync(file, "utf8").trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  if (text.length < MIN_TOKEN_CHARS || /\s/.test(text)) {
    throw new PyroError(ErrorCodes.UsageError, `the MCP token file ${file} is damaged`, {
      hint: `delete ${file}: pyro makes a new token on the next start (then update your hosts)`,
    });
  }
  return text;
}
