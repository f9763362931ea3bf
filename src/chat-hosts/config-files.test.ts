import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse as parseJsonc } from "jsonc-parser";
import { parse as parseToml } from "smol-toml";
import { describe, expect, it } from "vitest";
import { parseConfig, valueAt, withEntry, writeConfig } from "./config-files.js";

const entry = { command: "/usr/bin/node", args: ["/opt/pyro/dist/cli.js", "mcp", "serve"] };
const fresh = { mcpServers: { pyro: entry } };

describe("withEntry (JSON and JSONC)", () => {
  it("sets one entry and keeps comments, other servers and settings byte for byte", () => {
    const text = `{
  // my servers
  "theme": "dark", /* keep me */
  "mcpServers": {
    "other": { "command": "/bin/other", "args": ["x"] }
  },
}
`;
    const next = withEntry("c.jsonc", "json", text, ["mcpServers", "pyro"], entry, fresh);
    expect(next).toContain("// my servers");
    expect(next).toContain(`"theme": "dark", /* keep me */`);
    expect(next).toContain(`"other": { "command": "/bin/other", "args": ["x"] }`);
    expect(valueAt(parseJsonc(next), ["mcpServers", "pyro"])).toEqual(entry);
  });

  it("inserts after a trailing comma and a same-line comment, and into empty or missing objects", () => {
    const withComma = `{
  "mcp": {
    "a": 1, // note
  }
}
`;
    const next = withEntry("c.jsonc", "json", withComma, ["mcp", "pyro"], entry, fresh);
    expect(next).toContain(`"a": 1, // note
    "pyro": {`);
    expect(valueAt(parseJsonc(next), ["mcp", "pyro"])).toEqual(entry);
    for (const text of [
      `{}`,
      `{ "x": { } }`,
      `{
	"mcpServers": {}
}`,
    ]) {
      const set = withEntry("c.json", "json", text, ["mcpServers", "pyro"], entry, fresh);
      expect(JSON.parse(set).mcpServers.pyro).toEqual(entry);
    }
  });

  it("puts a missing comma after the value, not inside the comment that follows it", () => {
    const text = `{\n  "mcp": {\n    "other": { "command": ["/bin/x"] } // mine\n  }\n}\n`;
    const next = withEntry("c.jsonc", "json", text, ["mcp", "pyro"], entry, fresh);
    expect(next).toContain(`"other": { "command": ["/bin/x"] }, // mine\n    "pyro": {`);
  });

  it("keeps a byte-order mark", () => {
    const next = withEntry(
      "c.json",
      "json",
      '\uFEFF{"a": 1}',
      ["mcpServers", "pyro"],
      entry,
      fresh,
    );
    expect(next.startsWith('\uFEFF{"a": 1,')).toBe(true);
    expect(JSON.parse(next.slice(1)).mcpServers.pyro).toEqual(entry);
  });

  it("replaces an existing entry of the same name", () => {
    const text = JSON.stringify({ mcpServers: { pyro: { command: "/old" }, b: { url: "u" } } });
    const next = withEntry("c.json", "json", text, ["mcpServers", "pyro"], entry, fresh);
    expect(JSON.parse(next)).toEqual({ mcpServers: { pyro: entry, b: { url: "u" } } });
  });

  it("writes the whole document for a missing or empty file", () => {
    expect(
      JSON.parse(withEntry("c.json", "json", undefined, ["mcpServers", "pyro"], entry, fresh)),
    ).toEqual(fresh);
    expect(
      JSON.parse(withEntry("c.json", "json", "  \n", ["mcpServers", "pyro"], entry, fresh)),
    ).toEqual(fresh);
  });

  it("refuses a file it cannot parse, naming it", () => {
    expect(() =>
      withEntry("/x/c.json", "json", "{ nope", ["mcpServers", "pyro"], entry, fresh),
    ).toThrow(/\/x\/c\.json is not valid/);
  });
});

describe("withEntry (TOML)", () => {
  const codexEntry = { ...entry, env: { PYRO_HOME: "/h" } };
  const codexFresh = { mcp_servers: { pyro: codexEntry } };

  it("replaces the table and its sub-tables and keeps everything else byte for byte", () => {
    const other = `[mcp_servers.other]
command = "/bin/other" # why not
args = ["a"]

[mcp_servers.other.env]
X = "1"`;
    const text = `# my codex
model = "o3"

[mcp_servers.pyro]
command = "/old/node"
args = ["/old/cli.js", "mcp", "serve", "--bogus"]

[mcp_servers.pyro.env]
OLD = "1"

${other}

[profiles.fast]
model = "o4"
`;
    const next = withEntry(
      "config.toml",
      "toml",
      text,
      ["mcp_servers", "pyro"],
      codexEntry,
      codexFresh,
    );
    expect(next.startsWith(`# my codex\nmodel = "o3"\n`)).toBe(true);
    expect(next).toContain(other);
    expect(next).toContain(`[profiles.fast]\nmodel = "o4"`);
    expect(next).not.toContain("/old/");
    const parsed = parseToml(next) as Record<string, unknown>;
    expect(valueAt(parsed, ["mcp_servers", "pyro"])).toEqual(codexEntry);
    expect(valueAt(parsed, ["profiles", "fast", "model"])).toBe("o4");
  });

  it("keeps tables with `]` in a quoted key, and the comments that lead into the next table or end the file", () => {
    const text = [
      "[mcp_servers.pyro]",
      'command = "/old"',
      "",
      "# IMPORTANT: my server",
      '[mcp_servers."a]b"]',
      'command = "keepme"',
      "",
      "[mcp_servers.pyro.env]",
      'OLD = "1"',
      "# [mcp_servers.commented_out]",
      '# command = "x"',
      "",
    ].join("\r\n");
    const next = withEntry(
      "config.toml",
      "toml",
      text,
      ["mcp_servers", "pyro"],
      codexEntry,
      codexFresh,
    );
    expect(next).toContain('# IMPORTANT: my server\r\n[mcp_servers."a]b"]\r\ncommand = "keepme"');
    expect(next).toContain('# [mcp_servers.commented_out]\r\n# command = "x"');
    expect(next).not.toContain("/old");
    expect(next).not.toContain("OLD");
    expect(next.replace(/\r\n/g, "")).not.toContain("\n");
  });

  it("refuses an edit that would change anything but pyro's entry", () => {
    // A header-like line inside a multi-line string is not a header: pyro must not cut there.
    const text = `[mcp_servers.pyro]\ncommand = "/old"\nnote = """\n[mcp_servers.other]\n"""\n`;
    const out = (() => {
      try {
        return withEntry(
          "config.toml",
          "toml",
          text,
          ["mcp_servers", "pyro"],
          codexEntry,
          codexFresh,
        );
      } catch (error) {
        return error as Error;
      }
    })();
    if (typeof out === "string") {
      expect(valueAt(parseToml(out), ["mcp_servers", "pyro"])).toEqual(codexEntry);
    } else {
      expect(out.message).toMatch(/could not set/);
    }
  });

  it("finds quoted table names", () => {
    const text = `[mcp_servers."pyro"]\ncommand = "/old"\n`;
    const next = withEntry(
      "config.toml",
      "toml",
      text,
      ["mcp_servers", "pyro"],
      codexEntry,
      codexFresh,
    );
    expect(next).not.toContain("/old");
  });

  it("refuses a layout it would have to guess at (an inline table) and changes nothing", () => {
    const text = `mcp_servers = { pyro = { command = "/old" } }\n`;
    expect(() =>
      withEntry("config.toml", "toml", text, ["mcp_servers", "pyro"], codexEntry, codexFresh),
    ).toThrow(expect.objectContaining({ hint: expect.stringMatching(/by hand/) }));
  });

  it("refuses a broken file", () => {
    expect(() => parseConfig("config.toml", "toml", "[[[")).toThrow(/config\.toml is not valid/);
  });
});

describe("writeConfig", () => {
  it("keeps the file's mode, writes through a symlink, and makes new files owner-only", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-cfg-"));
    try {
      const real = path.join(dir, "real.json");
      fs.writeFileSync(real, "{}", { mode: 0o644 });
      fs.chmodSync(real, 0o644);
      const link = path.join(dir, "link.json");
      fs.symlinkSync(real, link);
      writeConfig(link, `{"a":1}`);
      expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
      expect(fs.readFileSync(real, "utf8")).toBe(`{"a":1}`);
      expect(fs.statSync(real).mode & 0o777).toBe(0o644);
      const created = path.join(dir, "sub", "new.json");
      writeConfig(created, "{}");
      expect(fs.statSync(created).mode & 0o777).toBe(0o600);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
