import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { mcpToken } from "./mcp-token.js";

const homes: string[] = [];
afterEach(() => {
  for (const home of homes.splice(0)) fs.rmSync(home, { recursive: true, force: true });
});

function home(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-token-"));
  homes.push(dir);
  return dir;
}

describe("mcpToken", () => {
  it("makes one owner-only token and then always returns it", () => {
    const env = { PYRO_HOME: home() };
    const first = mcpToken(env);
    expect(first).toMatchObject({ source: "file", file: path.join(env.PYRO_HOME, "mcp-token") });
    expect(first.token.length).toBeGreaterThanOrEqual(32);
    expect(fs.statSync(first.file!).mode & 0o777).toBe(0o600);
    expect(mcpToken(env).token).toBe(first.token);
    expect(fs.readdirSync(env.PYRO_HOME)).toEqual(["mcp-token"]);
  });

  it("tightens a token file others can read, and refuses a damaged one", () => {
    const env = { PYRO_HOME: home() };
    const file = path.join(env.PYRO_HOME, "mcp-token");
    fs.writeFileSync(file, "a-long-enough-token-here\n", { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    expect(mcpToken(env).token).toBe("a-long-enough-token-here");
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    fs.writeFileSync(file, "short\n");
    expect(() => mcpToken(env)).toThrow(/damaged/);
  });

  it("takes PYRO_MCP_TOKEN when set, if it is long enough", () => {
    const env = { PYRO_HOME: home(), PYRO_MCP_TOKEN: "from-the-environment-1" };
    expect(mcpToken(env)).toEqual({ token: "from-the-environment-1", source: "env" });
    expect(() => mcpToken({ ...env, PYRO_MCP_TOKEN: "short" })).toThrow(/at least 16/);
  });
});
