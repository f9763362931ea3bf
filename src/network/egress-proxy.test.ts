/** The egress proxy over its unix socket: what it refuses, and that it carries what it allows. */
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blockedReason, EgressProxy } from "./egress-proxy.js";

describe("blockedReason", () => {
  it("refuses loopback, private, link-local and reserved addresses, and the host's own", () => {
    expect(blockedReason("127.0.0.1")).toBe("the host's loopback");
    expect(blockedReason("127.8.9.10")).toBe("the host's loopback");
    expect(blockedReason("::1")).toBe("the host's loopback");
    expect(blockedReason("::ffff:127.0.0.1")).toBe("the host's loopback");
    expect(blockedReason("10.1.2.3")).toBe("a private network");
    expect(blockedReason("172.20.0.1")).toBe("a private network");
    expect(blockedReason("192.168.1.1")).toBe("a private network");
    expect(blockedReason("100.64.0.1")).toBe("a private network");
    expect(blockedReason("fd00::2")).toBe("a private network");
    expect(blockedReason("169.254.169.254")).toBe("a link-local address");
    expect(blockedReason("fe80::1")).toBe("a link-local address");
    expect(blockedReason("0.0.0.0")).toBe("a reserved address");
    expect(blockedReason("224.0.0.1")).toBe("a multicast address");
    for (const list of Object.values(os.networkInterfaces())) {
      for (const entry of list ?? []) expect(blockedReason(entry.address)).not.toBeNull();
    }
  });

  it("refuses every IPv6 spelling of an IPv4 address, and host addresses however written", () => {
    for (const address of [
      "::ffff:7f00:1",
      "::ffff:127.0.0.1",
      "::ffff:a00:1",
      "::ffff:a9fe:a9fe",
      "::ffff:8.8.8.8",
      "::ffff:0:0",
      "::7f00:1",
      "64:ff9b::7f00:1",
      "2002:7f00:1::",
      "fec0::1",
    ]) {
      expect(blockedReason(address), address).not.toBeNull();
    }
    for (const list of Object.values(os.networkInterfaces())) {
      for (const entry of list ?? []) {
        if (entry.family !== "IPv6") continue;
        // The longest spelling of the same address.
        const groups = entry.address.split("%")[0]!;
        expect(blockedReason(expandIPv6(groups)), groups).not.toBeNull();
      }
    }
  });

  it("allows public addresses", () => {
    expect(blockedReason("8.8.8.8")).toBeNull();
    expect(blockedReason("151.101.2.132")).toBeNull();
    expect(blockedReason("2a04:4e42::644")).toBeNull();
    expect(blockedReason("172.32.0.1")).toBeNull();
  });
});

function expandIPv6(address: string): string {
  const [head = "", tail = ""] = address.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const missing = address.includes("::") ? 8 - left.length - right.length : 0;
  return [...left, ...Array<string>(missing).fill("0"), ...right]
    .map((g) => g.padStart(4, "0"))
    .join(":");
}

/** One request to the proxy, raw, over its socket: the status line and the body. */
function raw(socketPath: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let answer = "";
    let tunnelled = false;
    socket.on("data", (chunk) => {
      answer += chunk.toString();
      // Through an open tunnel, speak HTTP to the target itself.
      if (
        !tunnelled &&
        request.startsWith("CONNECT") &&
        /^HTTP\/1.1 200[^]*\r\n\r\n/.test(answer)
      ) {
        tunnelled = true;
        socket.end("GET / HTTP/1.0\r\n\r\n");
      }
    });
    socket.on("end", () => resolve(answer));
    socket.on("error", reject);
    socket.write(request);
  });
}

describe("EgressProxy", () => {
  let dir: string;
  let server: http.Server;
  let port: number;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-proxy-test-"));
    server = http.createServer((_req, res) => res.end("hello from the target\n"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("listens on an owner-only socket", async () => {
    const socketPath = path.join(dir, "mode.sock");
    const proxy = await EgressProxy.listen(socketPath);
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o600);
    await proxy.close();
  });

  it("refuses a tunnel or a request to the host's loopback, saying why", async () => {
    const socketPath = path.join(dir, "refuse.sock");
    const proxy = await EgressProxy.listen(socketPath);
    try {
      const tunnel = await raw(socketPath, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`);
      expect(tunnel).toMatch(/^HTTP\/1.1 403/);
      expect(tunnel).toContain("127.0.0.1 is the host's loopback");
      const get = await raw(
        socketPath,
        `GET http://localhost:${port}/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
      );
      expect(get).toMatch(/^HTTP\/1.1 403/);
      expect(get).not.toContain("hello from the target");
      const bad = await raw(socketPath, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      expect(bad).toMatch(/^HTTP\/1.1 400/);
      expect(bad).toContain("egress proxy");
    } finally {
      await proxy.close();
    }
  });

  it("refuses the host's loopback spelled as an IPv4-mapped IPv6 address", async () => {
    const socketPath = path.join(dir, "mapped.sock");
    const proxy = await EgressProxy.listen(socketPath);
    try {
      const tunnel = await raw(socketPath, `CONNECT [::ffff:7f00:1]:${port} HTTP/1.1\r\n\r\n`);
      expect(tunnel).toMatch(/^HTTP\/1.1 403/);
      const get = await raw(
        socketPath,
        `GET http://[::ffff:127.0.0.1]:${port}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      expect(get).toMatch(/^HTTP\/1.1 403/);
      expect(get + tunnel).not.toContain("hello from the target");
    } finally {
      await proxy.close();
    }
  });

  it("survives a server that answers with an invalid status line", async () => {
    const bad = net.createServer((socket) => {
      socket.on("error", () => {});
      socket.once("data", () => socket.end("HTTP/1.1 000 Nothing\r\nContent-Length: 0\r\n\r\n"));
    });
    await new Promise<void>((resolve) => bad.listen(0, "127.0.0.1", resolve));
    const badPort = (bad.address() as net.AddressInfo).port;
    const socketPath = path.join(dir, "bad.sock");
    const proxy = await EgressProxy.listen(socketPath, () => null);
    try {
      const get = await raw(
        socketPath,
        `GET http://127.0.0.1:${badPort}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      expect(get).toMatch(/^HTTP\/1.1 502/);
      const after = await raw(
        socketPath,
        `GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      expect(after).toContain("hello from the target");
    } finally {
      await proxy.close();
      bad.close();
    }
  });

  it("serves an allowed host port on a socket of its own", async () => {
    const socketPath = path.join(dir, "hostport-proxy.sock");
    const forward = path.join(dir, "host-port.sock");
    const proxy = await EgressProxy.listen(socketPath);
    try {
      await proxy.forwardHostPort(port, forward);
      expect(fs.statSync(forward).mode & 0o777).toBe(0o600);
      const answer = await raw(forward, "GET / HTTP/1.0\r\n\r\n");
      expect(answer).toContain("hello from the target");
    } finally {
      await proxy.close();
    }
  });

  it("carries tunnels and plain requests to addresses its policy allows", async () => {
    const socketPath = path.join(dir, "allow.sock");
    // The test's target is on loopback: allow exactly that for this proxy.
    const proxy = await EgressProxy.listen(socketPath, () => null);
    try {
      const tunnel = await raw(socketPath, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`);
      expect(tunnel).toMatch(/^HTTP\/1.1 200 Connection Established/);
      expect(tunnel).toContain("hello from the target");
      const get = await raw(
        socketPath,
        `GET http://127.0.0.1:${port}/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      );
      expect(get).toMatch(/^HTTP\/1.1 200/);
      expect(get).toContain("hello from the target");
    } finally {
      await proxy.close();
    }
  });
});
