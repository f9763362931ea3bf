/**
 * `pyro mcp serve --http`: Streamable HTTP on 127.0.0.1, checked by the
 * official conformance suite (@modelcontextprotocol/conformance, which needs
 * Node 22: scripts/node22.sh fetches it) and by hand for the token and Host
 * checks. The server always requires a token and the suite cannot send one,
 * so the suite talks to it through a proxy that adds the header.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { afterEach, describe, expect, it } from "vitest";
import { CLI, ROOT } from "./helpers.js";

const execFileAsync = promisify(execFile);
const servers: ChildProcess[] = [];
const proxies: http.Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.kill("SIGTERM");
  for (const proxy of proxies.splice(0)) proxy.close();
});

const TOKEN = "s3cret-token-for-tests";

/** A proxy in front of URL that adds the bearer token and passes everything else through as is. */
async function withToken(url: string, token: string): Promise<string> {
  const target = new URL(url);
  const proxy = http.createServer((req, res) => {
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, authorization: `Bearer ${token}` },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  proxies.push(proxy);
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}${target.pathname}`;
}

/** Start `pyro mcp serve --http --port 0` and return the URL it prints. */
async function serve(env: NodeJS.ProcessEnv = {}): Promise<string> {
  // Outside any git checkout: new workspaces start empty, not seeded from this repository.
  const child = spawn(process.execPath, [CLI, "mcp", "serve", "--http", "--port", "0"], {
    cwd: os.tmpdir(),
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  servers.push(child);
  let stderr = "";
  return new Promise((resolve, reject) => {
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      const url = /listening on (http:\/\/\S+)/.exec(stderr)?.[1];
      if (url) resolve(url);
    });
    child.on("exit", (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
}

/** A raw initialize request, with extra headers. */
function postInitialize(url: string, headers: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...headers,
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "t", version: "1" },
      },
    }),
  });
}

const CONFORMANCE = path.join(
  ROOT,
  "node_modules",
  "@modelcontextprotocol",
  "conformance",
  "dist",
  "index.js",
);

describe("pyro mcp serve --http", () => {
  it("passes the conformance scenarios that apply to it", async () => {
    const node22 = execFileSync(path.join(ROOT, "scripts", "node22.sh"), {
      encoding: "utf8",
    }).trim();
    const direct = await serve({ PYRO_MCP_TOKEN: TOKEN });
    expect(direct).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const url = await withToken(direct, TOKEN);
    for (const scenario of [
      "server-initialize",
      "ping",
      "tools-list",
      "dns-rebinding-protection",
    ]) {
      let output: string;
      try {
        // Not execFileSync: the proxy runs in this process and must keep serving.
        ({ stdout: output } = await execFileAsync(
          node22,
          [CONFORMANCE, "server", "--url", url, "--scenario", scenario],
          { encoding: "utf8", timeout: 120_000 },
        ));
      } catch (error) {
        const e = error as { stdout?: string; stderr?: string };
        throw new Error(`${scenario} failed:\n${e.stdout ?? ""}${e.stderr ?? ""}`);
      }
      expect(output, scenario).toMatch(/Passed: (\d+)\/\1, 0 failed/);
    }
  });

  it("rejects foreign Host and Origin headers, and requires the bearer token", async () => {
    const url = await serve({ PYRO_MCP_TOKEN: TOKEN });
    const post = (extra: Record<string, string>) => postInitialize(url, extra);
    expect((await post({})).status).toBe(401);
    expect((await post({ authorization: "Bearer wrong-token!" })).status).toBe(401);
    const ok = await post({ authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    const rebinding = await post({
      authorization: `Bearer ${TOKEN}`,
      origin: "http://evil.example",
    });
    expect(rebinding.status).toBe(403);
  });

  it("makes an owner-only token when none is given, and requires it", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-token-"));
    try {
      const url = await serve({ PYRO_HOME: home, PYRO_MCP_TOKEN: "" });
      const file = path.join(home, "mcp-token");
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      const token = fs.readFileSync(file, "utf8").trim();
      expect(token.length).toBeGreaterThanOrEqual(32);
      const ping = (authorization?: string) =>
        postInitialize(url, authorization ? { authorization } : {});
      expect((await ping()).status).toBe(401);
      expect((await ping(`Bearer ${token}`)).status).toBe(200);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it("serves tool calls on a real guest to the official client, with the bearer token", async () => {
    const url = await serve({ PYRO_MCP_TOKEN: TOKEN });
    const client = new Client({ name: "pyro-http-test", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { authorization: `Bearer ${TOKEN}` } },
      }),
    );
    try {
      const call = async (name: string, args: Record<string, unknown>) => {
        const result = await client.callTool({ name, arguments: args }, { timeout: 300_000 });
        expect(result.isError, JSON.stringify(result.content)).not.toBe(true);
        return result.structuredContent as Record<string, unknown>;
      };
      const created = await call("workspace_create", {});
      const id = created.id as string;
      expect(created).toMatchObject({ state: "started", origin_kind: "empty" });
      const ran = await call("workspace_exec", {
        workspace_id: id,
        command: "echo hello over http; uname -s; exit 3",
      });
      expect(ran).toMatchObject({ status: "completed", exit_code: 3 });
      expect(ran.stdout).toBe("hello over http\nLinux\n");
      await call("workspace_delete", { workspace_id: id });
    } finally {
      await client.close();
    }
  });
});
