/**
 * What the use-case smokes share: a state directory of their own (the built
 * environments copied in, standby VMs off, so nothing is left running), a
 * fixture from smoke/fixtures/ turned into a git checkout, and the official
 * MCP client driving `pyro mcp serve` over stdio the way a chat host does.
 * Each smoke follows its recipe in docs/use-cases/ step by step.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { expect } from "vitest";
import {
  CLI,
  ROOT,
  commitFiles,
  copyEnvironmentInto,
  runCli,
  runCliJson,
} from "../test/helpers.js";

export type Structured = Record<string, unknown>;
export interface ToolResult {
  error: boolean;
  text: string;
  data: Structured;
}

export const FIXTURES = path.join(ROOT, "smoke", "fixtures");

export class UseCase {
  readonly home: string;
  readonly env: Record<string, string>;
  private readonly clients: Client[] = [];
  private readonly dirs: string[] = [];

  /** A fresh PYRO_HOME holding copies of these (already built) environments. */
  constructor(environments: string[] = ["debian:12"]) {
    this.home = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-use-case-"));
    for (const name of environments) copyEnvironmentInto(this.home, name);
    this.env = { PYRO_HOME: this.home, PYRO_STANDBY: "0" };
  }

  /** A temporary directory removed at the end. */
  tempDir(prefix: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  /** A copy of smoke/fixtures/NAME (plus extra files) committed as a fresh git checkout. */
  checkout(name: string, extra: Record<string, string> = {}): string {
    const dir = this.tempDir(`pyro-${name}-`);
    fs.cpSync(path.join(FIXTURES, name), dir, { recursive: true });
    for (const file of Object.keys(extra))
      fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    commitFiles(dir, extra, `${name} fixture`);
    return dir;
  }

  /**
   * Start the server the way Claude Code would after `pyro host connect
   * claude-code FLAGS`: the command and arguments `pyro host print-config
   * claude-code FLAGS` writes (`pyro mcp serve FLAGS`), run in cwd, and
   * connect the official client to it.
   */
  async connect(flags: string[], cwd = os.tmpdir()): Promise<Mcp> {
    const printed = await runCli(["host", "print-config", "claude-code", ...flags], this.env);
    expect(printed.code, printed.stderr).toBe(0);
    const config = JSON.parse(printed.stdout.toString()) as {
      mcpServers: { pyro: { command: string; args: string[]; env?: Record<string, string> } };
    };
    const server = config.mcpServers.pyro;
    expect(server.args).toEqual([CLI, "mcp", "serve", ...flags]);
    const client = new Client({ name: "pyro-use-case-smoke", version: "1.0.0" });
    await client.connect(
      new StdioClientTransport({
        command: server.command,
        args: server.args,
        cwd,
        env: { ...(process.env as Record<string, string>), ...this.env, ...server.env },
        stderr: "ignore",
      }),
    );
    this.clients.push(client);
    return new Mcp(client);
  }

  /** `pyro ARGS --json` against this smoke's state directory. */
  async cli<T = Structured>(args: string[]): Promise<T> {
    const result = await runCliJson<T>(args, this.env);
    expect(result.code, result.stderr).toBe(0);
    return result.json;
  }

  /** Close the clients, delete whatever workspaces are left, remove every temporary directory. */
  async close(): Promise<void> {
    for (const client of this.clients.splice(0)) await client.close().catch(() => {});
    try {
      const left = await runCliJson<{ workspaces: { id: string }[] }>(
        ["workspace", "list"],
        this.env,
      );
      for (const ws of left.json.workspaces ?? [])
        await runCliJson(["workspace", "delete", ws.id], this.env);
    } finally {
      for (const dir of [...this.dirs, this.home]) fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** One MCP connection: tool calls returning structuredContent, as a chat host hands it to the model. */
export class Mcp {
  constructor(readonly client: Client) {}

  async tools(): Promise<string[]> {
    return (await this.client.listTools()).tools.map((t) => t.name).sort();
  }

  async inputParams(tool: string): Promise<string[]> {
    const found = (await this.client.listTools()).tools.find((t) => t.name === tool);
    expect(found, `tool ${tool}`).toBeDefined();
    return Object.keys(found!.inputSchema.properties ?? {});
  }

  async call(name: string, args: Structured): Promise<ToolResult> {
    const result = await this.client.callTool({ name, arguments: args }, { timeout: 300_000 });
    const content = result.content as { text?: string }[];
    return {
      error: result.isError === true,
      text: content.map((c) => c.text ?? "").join("\n"),
      data: (result.structuredContent ?? {}) as Structured,
    };
  }

  /** A call that must succeed; its structuredContent. */
  async ok(name: string, args: Structured): Promise<Structured> {
    const result = await this.call(name, args);
    expect(result.error, `${name}: ${result.text}`).toBe(false);
    return result.data;
  }

  /**
   * workspace_exec to the end: a command that outlives one call's wait comes
   * back "running" with a command_id, and is waited for again with it, as a
   * model does.
   */
  async exec(workspace: string, command: string, extra: Structured = {}): Promise<Structured> {
    let result = await this.ok("workspace_exec", { workspace_id: workspace, command, ...extra });
    while (result.status === "running") {
      expect(result.command_id).toMatch(/^cmd_/);
      result = await this.ok("workspace_exec", {
        workspace_id: workspace,
        command_id: result.command_id,
        wait_seconds: 45,
      });
    }
    expect(result.status).toBe("completed");
    return result;
  }
}

/** `git status --porcelain` of a host checkout: empty when nothing in it changed. */
export function gitStatus(dir: string): string {
  return execFileSync("git", ["-C", dir, "status", "--porcelain"], { encoding: "utf8" });
}

/** An HTTP listener on the host's 127.0.0.1 that counts the connections it gets. */
export async function listener(): Promise<{
  port: number;
  hits: () => number;
  close: () => Promise<void>;
}> {
  let hits = 0;
  const server = http.createServer((_req, res) => res.end("a host secret\n"));
  server.on("connection", () => (hits += 1));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hits: () => hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** GET http://127.0.0.1:PORT/PATH from the host: status and body. */
export function fetchHost(
  port: number,
  urlPath: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: urlPath, timeout: 20_000 }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}
