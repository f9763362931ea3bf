/**
 * Serving a server factory: over stdio (chat hosts start `pyro mcp serve` as
 * a child), or over Streamable HTTP on 127.0.0.1 only, with Host and Origin
 * checks against DNS rebinding and a bearer token (always: any local process
 * can reach 127.0.0.1).
 */
import { timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createMcpHandler, type McpServer } from "@modelcontextprotocol/server";
import { serveStdio } from "@modelcontextprotocol/server/stdio";
import {
  localhostHostValidation,
  localhostOriginValidation,
  toNodeHandler,
} from "@modelcontextprotocol/node";

export const MCP_PATH = "/mcp";

/** Serve on stdin/stdout until the client closes stdin. */
export function serveOverStdio(factory: () => McpServer | Promise<McpServer>): Promise<void> {
  return new Promise((resolve) => {
    const handle = serveStdio(factory, { onerror: () => {} });
    process.stdin.once("end", () => void handle.close().finally(resolve));
  });
}

export interface HttpServeOptions {
  /** 0 picks a free port. */
  port: number;
  /** Required as `Authorization: Bearer <token>` on every request. */
  token: string;
}

export interface HttpServing {
  url: string;
  close(): Promise<void>;
}

/** Serve Streamable HTTP at http://127.0.0.1:PORT/mcp. */
export async function serveOverHttp(
  factory: () => McpServer | Promise<McpServer>,
  options: HttpServeOptions,
): Promise<HttpServing> {
  // An empty token would match an empty header: refuse to serve without a real one.
  if (options.token.length < 16)
    throw new Error("serveOverHttp needs a token of 16 or more characters");
  const handler = createMcpHandler(factory);
  const toNode = toNodeHandler(handler);
  const checkHost = localhostHostValidation();
  const checkOrigin = localhostOriginValidation();
  const server = http.createServer((req, res) => {
    // DNS rebinding: a page on another site must not reach this server through a name that resolves here.
    if (!checkHost(req, res) || !checkOrigin(req, res)) return;
    if (!bearerMatches(req.headers.authorization, options.token)) {
      res.writeHead(401, { "content-type": "application/json", "www-authenticate": "Bearer" });
      res.end(JSON.stringify({ error: "missing or wrong bearer token" }));
      return;
    }
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname !== MCP_PATH) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: `not found; the MCP endpoint is ${MCP_PATH}` }));
      return;
    }
    void toNode(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${MCP_PATH}`,
    close: async () => {
      await handler.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function bearerMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(/^Bearer (.+)$/i.exec(header ?? "")?.[1] ?? "");
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
