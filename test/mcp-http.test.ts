/**
 * `pyro mcp serve --http`: Streamable HTTP on 127.0.0.1, checked by the
 * official conformance suite (@modelcontextprotocol/conformance, which needs
 * Node 22: scripts/node22.sh fetches it) and by hand for the token and Host
 * checks.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { afterEach, describe, expect, it } from "vitest";
import { CLI, ROOT } from "./helpers.js";

const servers: ChildProcess[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.kill("SIGTERM");
});

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
    const url = await serve();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    for (const scenario of [
      "server-initialize",
      "ping",
      "tools-list",
      "dns-rebinding-protection",
    ]) {
      let output: string;
      try {
        output = execFileSync(
          node22,
          [CONFORMANCE, "server", "--url", url, "--scenario", scenario],
          {
            encoding: "utf8",
            stdio: ["ignore", "pipe", "pipe"],
            timeout: 120_000,
          },
        );
      } catch (error) {
        const e = error as { stdout?: string; stderr?: string };
        throw new Error(`${scenario} failed:\n${e.stdout ?? ""}${e.stderr ?? ""}`);
      }
      expect(output, scenario).toMatch(/Passed: (\d+)\/\1, 0 failed/);
    }
  });

  it("rejects foreign Host and Origin headers, and requires the bearer token when one is set", async () => {
    const url = await serve({ PYRO_MCP_TOKEN: "s3cret-token" });
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "t", version: "1" },
      },
    });
    const headers = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    };
    const post = (extra: Record<string, string>) =>
      fetch(url, { method: "POST", headers: { ...headers, ...extra }, body });
    expect((await post({})).status).toBe(401);
    expect((await post({ authorization: "Bearer wrong-token!" })).status).toBe(401);
    const ok = await post({ authorization: "Bearer s3cret-token" });
    expect(ok.status).toBe(200);
    const rebinding = await post({
      authorization: "Bearer s3cret-token",
      origin: "http://evil.example",
    });
    expect(rebinding.status).toBe(403);
  });

  it("serves tool calls on a real guest to the official client, with the bearer token", async () => {
    const url = await serve({ PYRO_MCP_TOKEN: "s3cret-token" });
    const client = new Client({ name: "pyro-http-test", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { authorization: "Bearer s3cret-token" } },
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
