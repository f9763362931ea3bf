/**
 * The egress proxy: an HTTP proxy (CONNECT for TLS and any TCP, absolute-form
 * requests for plain HTTP) that a networked guest reaches at PROXY_URL. It
 * runs on the host in the process that owns the VM, serves one VM on an
 * owner-only unix socket, and is the guest's only way out. It also carries
 * the guest's connections to allowed host ports (`forwardHostPort`), so
 * every connection a guest makes passes through one process with limits.
 *
 * It resolves names itself and connects only to the addresses it checked,
 * so a guest cannot reach the host's loopback, the host's own addresses and
 * the networks it is attached to, private or link-local ranges (the user's
 * LAN, cloud metadata) by any name, literal, IPv6 spelling or rebinding
 * trick. A refusal is a 403 whose body says why.
 *
 * This process owns the VM: nothing a guest or a remote server sends may
 * throw out of here (a crash would take the workspace down).
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
  /** Per allowed host port. */
  hostPortConnections: 64,
  /** Name lookups in flight (they share libuv's small thread pool). */
  lookups: 16,
  lookupTimeoutMs: 10_000,
  connectTimeoutMs: 30_000,
  idleTimeoutMs: 10 * 60_000,
} as const;

type Family = "ipv4" | "ipv6";

/** Ranges no guest may reach, and why. IPv4 rules also match IPv4-mapped IPv6 addresses. */
const BLOCKED_RANGES: readonly [string, number, Family, string][] = [
  ["0.0.0.0", 8, "ipv4", "a reserved address"],
  ["10.0.0.0", 8, "ipv4", "a private network"],
  ["100.64.0.0", 10, "ipv4", "a private network"],
  ["127.0.0.0", 8, "ipv4", "the host's loopback"],
  ["169.254.0.0", 16, "ipv4", "a link-local address"],
  ["172.16.0.0", 12, "ipv4", "a private network"],
  ["192.168.0.0", 16, "ipv4", "a private network"],
  ["224.0.0.0", 4, "ipv4", "a multicast address"],
  ["240.0.0.0", 4, "ipv4", "a reserved address"],
  ["::1", 128, "ipv6", "the host's loopback"],
  // Addresses that embed an IPv4 one (mapped, compatible, NAT64, 6to4): refused whole.
  ["::ffff:0:0", 96, "ipv6", "an IPv4-mapped address"],
  ["::", 96, "ipv6", "a reserved address"],
  ["64:ff9b::", 96, "ipv6", "a NAT64 address"],
  ["64:ff9b:1::", 48, "ipv6", "a NAT64 address"],
  ["2002::", 16, "ipv6", "a 6to4 address"],
  ["fc00::", 7, "ipv6", "a private network"],
  ["fe80::", 10, "ipv6", "a link-local address"],
  ["fec0::", 10, "ipv6", "a site-local address"],
  ["ff00::", 8, "ipv6", "a multicast address"],
];

const RULES = BLOCKED_RANGES.map(([prefix, bits, family, reason]) => {
  const list = new net.BlockList();
  list.addSubnet(prefix, bits, family);
  return { list, family, reason };
});

/** Why the guest may not connect to `address` (an IP literal), or null when it may. */
export function blockedReason(address: string): string | null {
  const family: Family | undefined = net.isIPv4(address)
    ? "ipv4"
    : net.isIPv6(address)
      ? "ipv6"
      : undefined;
  if (!family) return "not an IP address";
  for (const rule of RULES) {
    // An IPv6 rule such as ::ffff:0:0/96 would match every IPv4 address (Node maps them).
    if (family === "ipv4" && rule.family === "ipv6") continue;
    if (rule.list.check(address, family)) return rule.reason;
  }
  if (hostNetworks().check(address, family)) return "this host or a network it is on";
  return null;
}

/** The host's own addresses and the networks they are on (a service bound to 0.0.0.0 answers on each). */
function hostNetworks(): net.BlockList {
  const list = new net.BlockList();
  for (const entries of Object.values(os.networkInterfaces())) {
    for (const entry of entries ?? []) {
      const family = entry.family === "IPv4" ? "ipv4" : "ipv6";
      list.addAddress(entry.address, family);
      const prefix = Number(entry.cidr?.split("/")[1]);
      if (entry.cidr && Number.isInteger(prefix)) {
        list.addSubnet(entry.address, prefix, family);
      }
    }
  }
  return list;
}

/** Why an address is refused (null: allowed). Tests replace it to reach a local server. */
export type AddressPolicy = (address: string) => string | null;

class Refused extends Error {}

/** At most PROXY_LIMITS.lookups name lookups at once, each with a deadline. */
class Lookups {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  async resolve(host: string): Promise<string[]> {
    if (this.active >= PROXY_LIMITS.lookups) {
      if (this.waiting.length >= PROXY_LIMITS.connections) {
        throw new Error("too many name lookups at once");
      }
      await new Promise<void>((resume) => this.waiting.push(resume));
    }
    this.active += 1;
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("the name did not resolve in time")),
          PROXY_LIMITS.lookupTimeoutMs,
        );
      });
      const found = await Promise.race([
        dns.promises.lookup(host, { all: true, verbatim: true }),
        deadline,
      ]);
      return found.map((a) => a.address);
    } finally {
      clearTimeout(timer);
      this.active -= 1;
      this.waiting.shift()?.();
    }
  }
}

export class EgressProxy {
  private readonly sockets = new Set<Duplex>();
  private readonly forwards: net.Server[] = [];
  private readonly lookups = new Lookups();

  private constructor(
    private readonly server: http.Server,
    private readonly blocked: AddressPolicy,
  ) {}

  /** Serve on a new owner-only unix socket at `socketPath`. */
  static async listen(
    socketPath: string,
    blocked: AddressPolicy = blockedReason,
  ): Promise<EgressProxy> {
    const server = http.createServer();
    const proxy = new EgressProxy(server, blocked);
    server.maxConnections = PROXY_LIMITS.connections;
    server.on("request", (req, res) => {
      proxy.forward(req, res).catch(() => res.destroy());
    });
    server.on("connect", (req, socket: Duplex, head: Buffer) => {
      proxy.tunnel(req, socket, head).catch(() => socket.destroy());
    });
    server.on("connection", (socket: net.Socket) => proxy.track(socket));
    server.on("clientError", (_error, socket: Duplex) => socket.destroy());
    await listenOn(server, socketPath);
    return proxy;
  }

  /**
   * Serve the host's 127.0.0.1:`port` on another owner-only unix socket
   * (where QEMU's forward of an allowed host port connects).
   */
  async forwardHostPort(port: number, socketPath: string): Promise<void> {
    const server = net.createServer((client) => {
      this.track(client);
      const upstream = net.connect({ host: "127.0.0.1", port });
      this.track(upstream);
      client.pipe(upstream).pipe(client);
      upstream.on("close", () => client.destroy());
      client.on("close", () => upstream.destroy());
    });
    server.maxConnections = PROXY_LIMITS.hostPortConnections;
    this.forwards.push(server);
    await listenOn(server, socketPath);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const servers = [this.server, ...this.forwards];
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  private track(socket: Duplex): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    if (socket instanceof net.Socket) {
      socket.setTimeout(PROXY_LIMITS.idleTimeoutMs, () => socket.destroy());
    }
  }

  /** Resolve `host` on the host and return the first address the guest may reach. */
  private async resolveAllowed(host: string): Promise<string> {
    const literal = host.replace(/^\[(.*)\]$/, "$1");
    const candidates = net.isIP(literal) ? [literal] : await this.lookups.resolve(literal);
    let reason = "it has no address";
    for (const address of candidates) {
      const why = this.blocked(address);
      if (!why) return address;
      reason = `${address} is ${why}`;
    }
    throw new Refused(`pyro: ${host} is not reachable from this workspace: ${reason}`);
  }

  /** CONNECT host:port — a TCP tunnel (HTTPS, git, anything). */
  private async tunnel(req: http.IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const target = parseAuthority(req.url ?? "");
    if (!target) {
      client.end("HTTP/1.1 400 Bad Request\r\n\r\npyro: CONNECT needs host:port\n");
      return;
    }
    try {
      const address = await this.resolveAllowed(target.host);
      const upstream = await connectTo(address, target.port);
      this.track(upstream);
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
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
      answer(
        res,
        400,
        "pyro: this is the workspace's egress proxy; send absolute http:// URLs or CONNECT",
      );
      return;
    }
    try {
      const address = await this.resolveAllowed(url.hostname);
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
      upstream.on("response", (reply) => {
        const status = reply.statusCode ?? 0;
        try {
          // A server's status or headers that Node refuses to relay must not crash this process.
          if (status < 100 || status > 999) throw new Error(`invalid status ${status}`);
          res.writeHead(status, reply.headers);
        } catch (error) {
          reply.destroy();
          answer(res, 502, failureText(error, url.hostname));
          return;
        }
        reply.on("error", () => res.destroy());
        reply.pipe(res);
      });
      upstream.on("error", (error) => {
        if (res.headersSent) res.destroy();
        else answer(res, 502, failureText(error, url.hostname));
      });
      req.on("error", () => upstream.destroy());
      req.pipe(upstream);
    } catch (error) {
      answer(res, error instanceof Refused ? 403 : 502, failureText(error, url.hostname));
    }
  }
}

/** Listen on a fresh owner-only unix socket; later server errors are absorbed (this process owns a VM). */
async function listenOn(server: net.Server, socketPath: string): Promise<void> {
  fs.rmSync(socketPath, { force: true });
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(socketPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } finally {
    process.umask(umask);
  }
  server.on("error", () => {});
}

function answer(res: http.ServerResponse, status: number, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { "content-type": "text/plain" });
  res.end(`${text}\n`);
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
