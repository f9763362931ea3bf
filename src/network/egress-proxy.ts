/**
 * The egress proxy: an HTTP proxy (CONNECT for TLS and any TCP, absolute-form
 * requests for plain HTTP) that a networked guest reaches at PROXY_URL. It
 * runs on the host in the process that owns the VM, serves one VM on an
 * owner-only unix socket, and is the guest's only way out.
 *
 * It resolves names itself and connects only to the addresses it checked,
 * so a guest cannot reach the host's loopback, the host's own addresses,
 * private or link-local ranges (the user's LAN, cloud metadata) by any name,
 * literal or rebinding trick. A refusal is a 403 whose body says why.
 */
import dns from "node:dns";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import type { Duplex } from "node:stream";

/** Bounds so a guest flooding the proxy costs the host little. */
const PROXY_LIMITS = {
  connections: 256,
  connectTimeoutMs: 30_000,
  idleTimeoutMs: 10 * 60_000,
} as const;

const BLOCKED_RANGES: readonly [string, number, "ipv4" | "ipv6", string][] = [
  ["0.0.0.0", 8, "ipv4", "a reserved address"],
  ["10.0.0.0", 8, "ipv4", "a private network"],
  ["100.64.0.0", 10, "ipv4", "a private network"],
  ["127.0.0.0", 8, "ipv4", "the host's loopback"],
  ["169.254.0.0", 16, "ipv4", "a link-local address"],
  ["172.16.0.0", 12, "ipv4", "a private network"],
  ["192.168.0.0", 16, "ipv4", "a private network"],
  ["224.0.0.0", 4, "ipv4", "a multicast address"],
  ["240.0.0.0", 4, "ipv4", "a reserved address"],
  ["::", 128, "ipv6", "a reserved address"],
  ["::1", 128, "ipv6", "the host's loopback"],
  ["fc00::", 7, "ipv6", "a private network"],
  ["fe80::", 10, "ipv6", "a link-local address"],
  ["ff00::", 8, "ipv6", "a multicast address"],
];

/** Why the guest may not connect to `address` (an IP literal), or null when it may. */
export function blockedReason(address: string): string | null {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const ip = mapped ? mapped[1]! : address;
  const family = net.isIPv4(ip) ? "ipv4" : net.isIPv6(ip) ? "ipv6" : undefined;
  if (!family) return "not an IP address";
  for (const [prefix, bits, rangeFamily, reason] of BLOCKED_RANGES) {
    if (rangeFamily !== family) continue;
    const list = new net.BlockList();
    list.addSubnet(prefix, bits, rangeFamily);
    if (list.check(ip, family)) return reason;
  }
  if (hostAddresses().has(ip.toLowerCase())) return "this host";
  return null;
}

/** The host's own interface addresses (a service bound to 0.0.0.0 answers on each). */
function hostAddresses(): Set<string> {
  const addresses = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) {
    for (const entry of list ?? []) addresses.add(entry.address.toLowerCase());
  }
  return addresses;
}

class Refused extends Error {}

/** Why an address is refused (null: allowed). Tests replace it to reach a local server. */
export type AddressPolicy = (address: string) => string | null;

/** Resolve `host` on the host and return the first address the guest may reach. */
async function resolveAllowed(host: string, blocked: AddressPolicy): Promise<string> {
  const literal = host.replace(/^\[(.*)\]$/, "$1");
  const candidates = net.isIP(literal)
    ? [literal]
    : (await dns.promises.lookup(literal, { all: true, verbatim: true })).map((a) => a.address);
  let reason = "it has no address";
  for (const address of candidates) {
    const why = blocked(address);
    if (!why) return address;
    reason = `${address} is ${why}`;
  }
  throw new Refused(`pyro: ${host} is not reachable from this workspace: ${reason}`);
}

export class EgressProxy {
  private readonly sockets = new Set<Duplex>();

  private constructor(
    private readonly server: http.Server,
    private readonly blocked: AddressPolicy,
  ) {}

  /** Serve on a new owner-only unix socket at `socketPath`. */
  static async listen(
    socketPath: string,
    blocked: AddressPolicy = blockedReason,
  ): Promise<EgressProxy> {
    fs.rmSync(socketPath, { force: true });
    const server = http.createServer();
    const proxy = new EgressProxy(server, blocked);
    server.maxConnections = PROXY_LIMITS.connections;
    server.on("request", (req, res) => void proxy.forward(req, res));
    server.on("connect", (req, socket, head) => void proxy.tunnel(req, socket, head));
    server.on("connection", (socket: net.Socket) => proxy.track(socket));
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(socketPath, () => resolve());
      });
    } finally {
      process.umask(umask);
    }
    return proxy;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: Duplex): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => {});
    if (socket instanceof net.Socket) {
      socket.setTimeout(PROXY_LIMITS.idleTimeoutMs, () => socket.destroy());
    }
  }

  /** CONNECT host:port — a TCP tunnel (HTTPS, git, anything). */
  private async tunnel(req: http.IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const target = parseAuthority(req.url ?? "");
    if (!target) {
      client.end("HTTP/1.1 400 Bad Request\r\n\r\npyro: CONNECT needs host:port\n");
      return;
    }
    try {
      const address = await resolveAllowed(target.host, this.blocked);
      const upstream = await connectTo(address, target.port);
      this.track(upstream);
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
      upstream.on("close", () => client.destroy());
      client.on("close", () => upstream.destroy());
    } catch (error) {
      const status = error instanceof Refused ? "403 Forbidden" : "502 Bad Gateway";
      client.end(
        `HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\n\r\n${failureText(error, target.host)}\n`,
      );
    }
  }

  /** GET http://host/path … — plain HTTP through the proxy (apt's http:// archives). */
  private async forward(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? "");
      if (url.protocol !== "http:") throw new Error("not http");
    } catch {
      res.writeHead(400, { "content-type": "text/plain" });
      res.end(
        "pyro: this is the workspace's egress proxy; send absolute http:// URLs or CONNECT\n",
      );
      return;
    }
    try {
      const address = await resolveAllowed(url.hostname, this.blocked);
      const headers = { ...req.headers };
      for (const hop of ["proxy-connection", "proxy-authorization", "connection", "keep-alive"])
        delete headers[hop];
      const upstream = http.request({
        host: address,
        port: url.port || 80,
        method: req.method,
        path: `${url.pathname}${url.search}`,
        headers,
        agent: false,
        timeout: PROXY_LIMITS.connectTimeoutMs,
      });
      upstream.on("timeout", () =>
        upstream.destroy(new Error("the server did not answer in time")),
      );
      upstream.on("response", (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on("error", (error) => {
        if (res.headersSent) res.destroy();
        else {
          res.writeHead(502, { "content-type": "text/plain" });
          res.end(`${failureText(error, url.hostname)}\n`);
        }
      });
      req.pipe(upstream);
    } catch (error) {
      res.writeHead(error instanceof Refused ? 403 : 502, { "content-type": "text/plain" });
      res.end(`${failureText(error, url.hostname)}\n`);
    }
  }
}

function connectTo(address: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port });
    const timer = setTimeout(
      () => socket.destroy(new Error("the server did not answer in time")),
      PROXY_LIMITS.connectTimeoutMs,
    );
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function parseAuthority(authority: string): { host: string; port: number } | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(authority);
  if (!match) return undefined;
  const port = Number(match[2]);
  return port >= 1 && port <= 65535 ? { host: match[1]!, port } : undefined;
}

function failureText(error: unknown, host: string): string {
  if (error instanceof Refused) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  return `pyro: could not reach ${host}: ${message}`;
}
