/**
 * `pyro host connect|doctor|repair|print-config` against the real chat-host
 * CLIs (pinned in test/hosts/, installed by test/hosts/install.sh) in a
 * temporary HOME, offline: each host's own command says whether pyro is
 * connected. pyro runs from a copy of its install that the test then moves,
 * as a user's clone moves.
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { findNodeAtLocation, parseTree } from "jsonc-parser";
import { parse as parseToml } from "smol-toml";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "./helpers.js";

/** The host CLIs' bin directory, or why the tests cannot run. */
function installHostClis(): { bin?: string; reason?: string } {
  try {
    const bin = execFileSync("sh", [path.join(ROOT, "test", "hosts", "install.sh")], {
      encoding: "utf8",
      timeout: 600_000,
    }).trim();
    return { bin };
  } catch (error) {
    return {
      reason: `the pinned host CLIs could not be installed from npm: ${(error as Error).message.split("\n")[0]}`,
    };
  }
}

const { bin, reason } = installHostClis();
const home = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-hosts-home-"));
const installs = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-install-"));
afterAll(() => {
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(installs, { recursive: true, force: true });
});

const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(XDG_|CODEX_HOME|CLAUDE_CONFIG_DIR|OPENCODE_|MCP_TIMEOUT)/.test(k),
    ),
  ),
  HOME: home,
  PATH: `${bin}:${process.env.PATH}`,
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
  DISABLE_AUTOUPDATER: "1",
  OPENCODE_DISABLE_AUTOUPDATE: "1",
  OPENCODE_DISABLE_MODELS_FETCH: "1",
  MCP_TIMEOUT: "30000",
};

/** OpenCode installs a plugin package when it can reach npm: keep it offline where we can. */
const offline = spawnSync("unshare", ["-n", "true"]).status === 0 ? ["unshare", "-n"] : [];

function run(
  command: string[],
  options: { cwd?: string } = {},
): { code: number; out: string; stdout: string } {
  const [file, ...args] = command;
  const result = spawnSync(file!, args, {
    env,
    cwd: options.cwd ?? home,
    encoding: "utf8",
    timeout: 180_000,
    stdio: ["ignore", "pipe", "pipe"],
  });
  // eslint-disable-next-line no-control-regex
  const out = `${result.stdout}${result.stderr}`.replace(/\x1b\[[0-9;]*m/g, "");
  return { code: result.status ?? -1, out, stdout: result.stdout };
}

/** pyro as installed at DIR (a copy of this checkout's package). */
function pyro(dir: string, args: string[]): { code: number; out: string } {
  return run([process.execPath, path.join(dir, "dist", "cli.js"), ...args]);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed JSON, checked by the assertions
function hostDoctor(dir: string): { code: number; hosts: Record<string, any> } {
  const { code, out } = pyro(dir, ["host", "doctor", "--json"]);
  const report = JSON.parse(out) as { hosts: { host: string }[] };
  return { code, hosts: Object.fromEntries(report.hosts.map((h) => [h.host, h])) };
}

const CLAUDE_JSON = path.join(home, ".claude.json");
const CODEX_TOML = path.join(home, ".codex", "config.toml");
const OPENCODE_JSONC = path.join(home, ".config", "opencode", "opencode.jsonc");
const OTHER_CODEX = `[mcp_servers.other]\ncommand = "/bin/false" # another server\nargs = ["--x"]\n`;

/** The exact bytes of a JSON file's `keys` value. */
function rawJson(file: string, keys: string[]): string {
  const text = fs.readFileSync(file, "utf8");
  const node = findNodeAtLocation(parseTree(text)!, keys)!;
  return text.slice(node.offset, node.offset + node.length);
}

function claudeConnected(): boolean {
  return /^pyro: .* - ✔ Connected$/m.test(run(["claude", "mcp", "list"]).out);
}

function opencodeConnected(): boolean {
  return /✓ pyro connected/.test(run([...offline, "opencode", "mcp", "list"]).out);
}

describe.skipIf(!bin)(`pyro with real chat hosts${reason ? ` (skipped: ${reason})` : ""}`, () => {
  const first = path.join(installs, "pyro-a");
  const moved = path.join(installs, "pyro-b");

  it("connects Claude Code, Codex and OpenCode; each host sees pyro connected", () => {
    fs.mkdirSync(first);
    fs.cpSync(path.join(ROOT, "dist"), path.join(first, "dist"), { recursive: true });
    fs.copyFileSync(path.join(ROOT, "package.json"), path.join(first, "package.json"));
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(first, "node_modules"));
    // Another server in every config, which pyro must never touch.
    const other = { type: "stdio", command: "/bin/false", args: [], env: {} };
    fs.writeFileSync(CLAUDE_JSON, JSON.stringify({ mcpServers: { other } }, null, 2));
    fs.mkdirSync(path.dirname(CODEX_TOML), { recursive: true });
    fs.writeFileSync(CODEX_TOML, `# my settings\nmodel = "o3"\n\n${OTHER_CODEX}`);
    fs.mkdirSync(path.dirname(OPENCODE_JSONC), { recursive: true });
    fs.writeFileSync(
      OPENCODE_JSONC,
      `{\n  // mine\n  "mcp": {\n    "other": { "type": "local", "command": ["/bin/false"], "enabled": false }\n  }\n}\n`,
    );

    for (const host of ["claude-code", "codex", "opencode"]) {
      const connected = pyro(first, ["host", "connect", host, "--mode", "repro-fix", "--json"]);
      expect(connected.code, connected.out).toBe(0);
      const result = JSON.parse(connected.out);
      expect(result.launch.args.slice(0, 3)).toEqual([
        path.join(first, "dist", "cli.js"),
        "mcp",
        "serve",
      ]);
      // Claude Code registers through its own CLI; Codex's and OpenCode's files are edited.
      expect(result.method).toBe(host === "claude-code" ? "cli" : "file");
    }
    expect(claudeConnected()).toBe(true);
    const codex = JSON.parse(run(["codex", "mcp", "get", "pyro", "--json"]).stdout);
    expect(codex.transport.args).toEqual([
      path.join(first, "dist", "cli.js"),
      "mcp",
      "serve",
      "--mode",
      "repro-fix",
    ]);
    expect(opencodeConnected()).toBe(true);

    const doctor = hostDoctor(first);
    expect(doctor.code).toBe(0);
    for (const host of ["claude-code", "codex", "opencode"]) {
      expect(doctor.hosts[host], host).toMatchObject({ status: "healthy", registered: true });
      expect(doctor.hosts[host].installed).toMatch(new RegExp(`^${bin}/`));
      expect(doctor.hosts[host].tools).toBeGreaterThan(5);
    }
    expect(doctor.hosts.codex.seeds_from).toMatch(/^nothing: Codex starts servers/);
    expect(doctor.hosts["claude-code"].seeds_from).toMatch(/^the git checkout Claude Code/);
  });

  it("reports every entry broken after the install moves, and repair heals them, touching nothing else", () => {
    const before = {
      claude: rawJson(CLAUDE_JSON, ["mcpServers", "other"]),
      opencode: rawJson(OPENCODE_JSONC, ["mcp", "other"]),
    };
    fs.renameSync(first, moved);

    const broken = hostDoctor(moved);
    expect(broken.code).toBe(1);
    for (const host of ["claude-code", "codex", "opencode"]) {
      expect(broken.hosts[host], host).toMatchObject({
        status: "broken",
        fix: `pyro host repair ${host}`,
      });
      expect(broken.hosts[host].problem).toContain("does not exist");
    }
    const human = pyro(moved, ["host", "doctor"]);
    expect(human.out).toMatch(/FAIL Claude Code: registered, but .*does not exist/);
    expect(human.out).toContain("fix: pyro host repair codex");
    expect(claudeConnected()).toBe(false);

    for (const host of ["claude-code", "codex", "opencode"]) {
      const repaired = pyro(moved, ["host", "repair", host, "--json"]);
      expect(repaired.code, repaired.out).toBe(0);
      expect(JSON.parse(repaired.out).launch.args).toEqual([
        path.join(moved, "dist", "cli.js"),
        "mcp",
        "serve",
        "--mode",
        "repro-fix",
      ]);
    }
    const healed = hostDoctor(moved);
    expect(healed.code).toBe(0);
    for (const host of ["claude-code", "codex", "opencode"]) {
      expect(healed.hosts[host], host).toMatchObject({ status: "healthy" });
      expect(healed.hosts[host].note).toBeUndefined();
    }
    expect(claudeConnected()).toBe(true);
    expect(opencodeConnected()).toBe(true);

    expect(rawJson(CLAUDE_JSON, ["mcpServers", "other"])).toBe(before.claude);
    expect(rawJson(OPENCODE_JSONC, ["mcp", "other"])).toBe(before.opencode);
    expect(fs.readFileSync(OPENCODE_JSONC, "utf8")).toContain("// mine");
    const codexText = fs.readFileSync(CODEX_TOML, "utf8");
    expect(codexText).toContain(OTHER_CODEX);
    expect(codexText).toContain(`# my settings\nmodel = "o3"\n`);
  });

  it("prints a config that parses for all six hosts", () => {
    for (const host of ["claude-code", "codex", "opencode", "cursor", "vscode", "claude-desktop"]) {
      const printed = pyro(moved, ["host", "print-config", host, "--mode", "inspect"]);
      expect(printed.code, printed.out).toBe(0);
      const doc = host === "codex" ? parseToml(printed.out) : JSON.parse(printed.out);
      expect(JSON.stringify(doc)).toContain(
        `"${path.join(moved, "dist", "cli.js")}","mcp","serve","--mode","inspect"`,
      );
    }
  });
});
