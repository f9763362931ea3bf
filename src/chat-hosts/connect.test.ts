import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse as parseJsonc } from "jsonc-parser";
import { parse as parseToml } from "smol-toml";
import { afterEach, describe, expect, it } from "vitest";
import { withEntry, writeConfig } from "./config-files.js";
import { connectHost, printConfig, repairHost, writeConfigTo } from "./connect.js";
import { HOSTS, HOST_SPECS, type HostId } from "./hosts.js";

const homes: string[] = [];
afterEach(() => {
  for (const home of homes.splice(0)) fs.rmSync(home, { recursive: true, force: true });
});

/** A temporary HOME with no host CLIs on PATH: pyro edits the files itself. */
function tempEnv(): NodeJS.ProcessEnv {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-hosts-"));
  homes.push(home);
  return { HOME: home, PATH: "/nonexistent" };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed snippets, checked by the assertions
type Json = Record<string, any>;

const isAbsoluteString = (v: unknown) => typeof v === "string" && path.isAbsolute(v);
const allStrings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");

/** Each host's documented shape for a stdio server, checked on the parsed snippet. */
const STDIO_SHAPES: Record<HostId, (doc: Json) => void> = {
  "claude-code": (doc) => {
    const e = doc.mcpServers.pyro;
    expect(e.type).toBe("stdio");
    expect(isAbsoluteString(e.command) && allStrings(e.args)).toBe(true);
  },
  codex: (doc) => {
    const e = doc.mcp_servers.pyro;
    expect(isAbsoluteString(e.command) && allStrings(e.args)).toBe(true);
  },
  opencode: (doc) => {
    expect(doc.$schema).toBe("https://opencode.ai/config.json");
    const e = doc.mcp.pyro;
    expect(e).toMatchObject({ type: "local", enabled: true });
    // OpenCode rejects the whole config if any command word is not a string.
    expect(allStrings(e.command) && isAbsoluteString(e.command[0])).toBe(true);
  },
  cursor: (doc) => {
    const e = doc.mcpServers.pyro;
    expect(isAbsoluteString(e.command) && allStrings(e.args)).toBe(true);
  },
  vscode: (doc) => {
    expect(doc.mcpServers).toBeUndefined();
    const e = doc.servers.pyro;
    expect(e.type).toBe("stdio");
    expect(isAbsoluteString(e.command) && allStrings(e.args)).toBe(true);
  },
  "claude-desktop": (doc) => {
    const e = doc.mcpServers.pyro;
    expect(e.type).toBeUndefined();
    expect(isAbsoluteString(e.command) && allStrings(e.args)).toBe(true);
  },
};

function parseSnippet(host: HostId, text: string): Json {
  return HOST_SPECS[host].format === "toml"
    ? (JSON.parse(JSON.stringify(parseToml(text))) as Json)
    : (JSON.parse(text) as Json);
}

describe("printConfig", () => {
  it.each(HOSTS)("prints a config %s parses, in its documented shape", (host) => {
    const printed = printConfig(host, { mode: "repro-fix", environment: "debian:12" }, tempEnv());
    const doc = parseSnippet(host, printed.text);
    STDIO_SHAPES[host](doc);
    expect(JSON.stringify(doc)).toContain(
      '"mcp","serve","--mode","repro-fix","--environment","debian:12"',
    );
  });

  it("prints HTTP entries with the bearer token (Codex: from $PYRO_MCP_TOKEN), and none for Claude Desktop", () => {
    const http = { url: "http://127.0.0.1:8765/mcp", token: "t0ken-t0ken-t0ken" };
    const env = tempEnv();
    const auth = { Authorization: "Bearer t0ken-t0ken-t0ken" };
    expect(parseSnippet("claude-code", printConfig("claude-code", { http }, env).text)).toEqual({
      mcpServers: { pyro: { type: "http", url: http.url, headers: auth } },
    });
    expect(parseSnippet("vscode", printConfig("vscode", { http }, env).text).servers.pyro).toEqual({
      type: "http",
      url: http.url,
      headers: auth,
    });
    expect(
      parseSnippet("opencode", printConfig("opencode", { http }, env).text).mcp.pyro,
    ).toMatchObject({
      type: "remote",
      headers: auth,
    });
    expect(
      parseSnippet("cursor", printConfig("cursor", { http }, env).text).mcpServers.pyro,
    ).toEqual({
      url: http.url,
      headers: auth,
    });
    const codex = printConfig("codex", { http }, env).text;
    expect(codex).not.toContain("t0ken");
    expect(parseSnippet("codex", codex).mcp_servers.pyro).toEqual({
      url: http.url,
      bearer_token_env_var: "PYRO_MCP_TOKEN",
    });
    expect(() => printConfig("claude-desktop", { http }, env)).toThrow(/local servers only/);
  });
});

describe("connectHost and repairHost by config file", () => {
  it("adds pyro to an OpenCode config with comments and another server, touching nothing else", async () => {
    const env = tempEnv();
    const file = path.join(env.HOME!, ".config", "opencode", "opencode.jsonc");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const other = `"other": { "type": "local", "command": ["/bin/other", "8080"] }`;
    fs.writeFileSync(file, `{\n  // mine\n  "mcp": {\n    ${other}\n  }\n}\n`);
    const result = await connectHost("opencode", { mode: "inspect" }, env);
    expect(result).toMatchObject({ method: "file", config_file: file, replaced: false });
    const text = fs.readFileSync(file, "utf8");
    expect(text).toContain("// mine");
    expect(text).toContain(other);
    expect(parseJsonc(text).mcp.pyro.command.slice(-2)).toEqual(["--mode", "inspect"]);
  });

  it("repairs a broken entry for each host, keeping the flags that still work", async () => {
    const env = tempEnv();
    for (const host of ["claude-code", "codex", "opencode"] as const) {
      const spec = HOST_SPECS[host];
      const stale = spec.stdioEntry({
        command: "/moved/away/node",
        args: ["/moved/away/dist/cli.js", "mcp", "serve", "--mode", "review-eval", "--gone"],
        env: {},
      });
      const file = spec.configFile(env);
      const other = spec.stdioEntry({ command: "/bin/true", args: [], env: {} });
      let text = withEntry(file, spec.format, undefined, [], {}, spec.document("pyro", stale));
      text = withEntry(file, spec.format, text, spec.entryPath("other"), other, {});
      writeConfig(file, text);
      const result = await repairHost(host, {}, env);
      expect(result.dropped).toEqual(["--gone"]);
      expect(result.launch.args.slice(1)).toEqual(["mcp", "serve", "--mode", "review-eval"]);
      expect(result.launch.command).not.toBe("/moved/away/node");
      const after = fs.readFileSync(file, "utf8");
      expect(after).not.toContain("/moved/away");
      expect(after).toContain("/bin/true");
    }
  });

  it("refuses to repair an HTTP entry into a stdio one", async () => {
    const env = tempEnv();
    const spec = HOST_SPECS.opencode;
    const http = spec.httpEntry({ url: "http://127.0.0.1:8765/mcp", token: "t0ken-t0ken-t0ken" });
    writeConfig(spec.configFile(env), JSON.stringify(spec.document("pyro", http as Json)));
    await expect(repairHost("opencode", {}, env)).rejects.toThrow(/over HTTP/);
  });

  it("writes an entry holding a token owner-only, whatever the file's mode was", async () => {
    const env = tempEnv();
    const file = path.join(env.HOME!, "mcp.json");
    fs.writeFileSync(file, "{}", { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    writeConfigTo(
      "cursor",
      file,
      { http: { url: "http://127.0.0.1:1/mcp", token: "t0ken-t0ken-t0ken" } },
      env,
    );
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it("says what to do when there is nothing to repair", async () => {
    await expect(repairHost("codex", {}, tempEnv())).rejects.toMatchObject({
      code: "host_not_registered",
      hint: expect.stringMatching(/pyro host connect codex/),
    });
  });
});
