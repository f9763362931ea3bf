/** The agent's services through the real host client: readiness, failure, logs, stop. */
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors.js";
import { SERVICE_LIMITS } from "./services.js";
import { connect, pidGone, rejection, scratch, useAgentHarness, waitFor } from "./testing.js";

useAgentHarness();

let cwd: string;
beforeAll(() => {
  process.env.PYRO_AGENT_SERVICES_DIR = scratch("services");
  cwd = scratch("cwd");
});

let counter = 0;
const unique = (name: string) => `${name}-${++counter}`;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const start = (args: Record<string, unknown>) =>
  connect().client.request("service_start", { cwd, ...args } as never);

describe("services", () => {
  it("is running at once without a readiness check, and stops on request", async () => {
    const name = unique("plain");
    const started = await start({ name, argv: ["sleep", "60"] });
    expect(started.state).toBe("running");
    expect(started.pid).toBeGreaterThan(0);
    const stopped = await connect().client.request("service_stop", { name });
    expect(stopped.state).toBe("stopped");
    expect(stopped.stop_reason).toBe("stopped on request");
    expect(stopped.signal).toBe("SIGTERM");
    expect(pidGone(started.pid!)).toBe(true);
  });

  it("waits for a file, a TCP port, an HTTP answer or a command", async () => {
    const flag = path.join(cwd, `ready-${++counter}`);
    const file = await start({
      name: unique("file"),
      argv: ["sh", "-c", `sleep 0.3; touch ${flag}; sleep 60`],
      readiness: { kind: "file", path: flag },
      ready_interval_ms: 50,
    });
    expect(file.state).toBe("ready");
    expect(Date.parse(file.ready_at!)).toBeGreaterThanOrEqual(Date.parse(file.started_at));

    const port = await freePort();
    const server = `require("http").createServer((q, s) => s.end("hi")).listen(${port}, "127.0.0.1")`;
    const tcp = await start({
      name: unique("tcp"),
      argv: [process.execPath, "-e", `setTimeout(() => { ${server} }, 300)`],
      readiness: { kind: "tcp", port },
      ready_interval_ms: 50,
    });
    expect(tcp.state).toBe("ready");
    await connect().client.request("service_stop", { name: tcp.name });

    const port2 = await freePort();
    const http = await start({
      name: unique("http"),
      argv: [process.execPath, "-e", server.replace(String(port), String(port2))],
      readiness: { kind: "http", url: `http://127.0.0.1:${port2}/` },
      ready_interval_ms: 50,
    });
    expect(http.state).toBe("ready");

    const command = await start({
      name: unique("command"),
      argv: ["sleep", "60"],
      readiness: { kind: "command", command: "test -d /" },
    });
    expect(command.state).toBe("ready");
    for (const s of [file, http, command])
      await connect().client.request("service_stop", { name: s.name });
  });

  it("fails a service that exits before it is ready, with its exit code and log tail", async () => {
    const failed = await start({
      name: unique("crash"),
      argv: ["sh", "-c", "echo booting; echo 'no config' >&2; exit 3"],
      readiness: { kind: "file", path: "/nonexistent/flag" },
    });
    expect(failed.state).toBe("failed");
    expect(failed.exit_code).toBe(3);
    expect(failed.stop_reason).toBe("exited before it was ready (exit code 3)");
    expect(failed.log_tail).toContain("booting\n");
    expect(failed.log_tail).toContain("no config\n");
  });

  it("fails a service that is not ready in time and kills its whole process group", async () => {
    const name = unique("slow");
    const pidFile = path.join(cwd, `child-${counter}`);
    const failed = await start({
      name,
      argv: ["sh", "-c", `sleep 60 & echo $! > ${pidFile}; wait`],
      readiness: { kind: "file", path: "/nonexistent/flag" },
      ready_timeout_ms: 400,
      ready_interval_ms: 50,
    });
    expect(failed.state).toBe("failed");
    expect(failed.stop_reason).toBe("not ready after 0.4 s");
    const child = Number(fs.readFileSync(pidFile, "utf8"));
    await waitFor(() => pidGone(child), "the service's background child to be killed");
  });

  it("says a service ended on its own", async () => {
    const name = unique("short");
    await start({ name, argv: ["sh", "-c", "exit 0"] });
    let status = await connect().client.request("service_status", { name });
    for (let i = 0; i < 100 && status.state === "running"; i++) {
      await new Promise((r) => setTimeout(r, 20));
      status = await connect().client.request("service_status", { name });
    }
    expect(status.state).toBe("exited");
    expect(status.exit_code).toBe(0);
    expect(status.stop_reason).toBe("exited on its own (exit code 0)");
  });

  it("refuses a second service of a running name and an unknown name, naming the known ones", async () => {
    const name = unique("twice");
    await start({ name, argv: ["sleep", "60"] });
    const again = await rejection(start({ name, argv: ["sleep", "60"] }));
    expect(again.code).toBe(ErrorCodes.Conflict);
    const missing = await rejection(
      connect().client.request("service_status", { name: "no-such-service" }),
    );
    expect(missing.code).toBe(ErrorCodes.ServiceNotFound);
    expect(missing.message).toContain(name);
    await connect().client.request("service_stop", { name });
  });

  it("keeps a flooding service's log bounded, and serves its tail and all of it", async () => {
    const name = unique("flood");
    // ~6 MiB of numbered lines, three times what the log keeps.
    await start({
      name,
      argv: ["sh", "-c", "seq 1 800000; echo last-line"],
    });
    let status = await connect().client.request("service_status", { name });
    for (let i = 0; i < 500 && status.state === "running"; i++) {
      await new Promise((r) => setTimeout(r, 20));
      status = await connect().client.request("service_status", { name });
    }
    expect(status.state).toBe("exited");
    expect(status.log_bytes).toBeGreaterThan(5_000_000);
    expect(status.log_dropped_bytes).toBeGreaterThan(0);
    const dir = path.join(process.env.PYRO_AGENT_SERVICES_DIR!, name);
    const held = fs
      .readdirSync(dir)
      .reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);
    expect(held).toBeLessThanOrEqual(2 * SERVICE_LIMITS.logFileBytes);

    const tail: Buffer[] = [];
    const result = await connect().client.request(
      "service_logs",
      { name, tail_lines: 2 },
      { onData: (_s, b) => tail.push(b) },
    );
    expect(Buffer.concat(tail).toString()).toBe("800000\nlast-line\n");
    expect(result.truncated).toBe(true);
    const all: Buffer[] = [];
    await connect().client.request(
      "service_logs",
      { name, all: true },
      { onData: (_s, b) => all.push(b) },
    );
    const text = Buffer.concat(all).toString();
    expect(text.length).toBe(held);
    expect(text.endsWith("last-line\n")).toBe(true);
  });

  it("does not count a ready file an earlier run left", async () => {
    const flag = path.join(cwd, `old-flag-${++counter}`);
    fs.writeFileSync(flag, "");
    const stale = await start({
      name: unique("stale"),
      argv: ["sleep", "60"],
      readiness: { kind: "file", path: flag },
      ready_timeout_ms: 300,
      ready_interval_ms: 50,
    });
    expect(stale.state).toBe("failed");
    const fresh = await start({
      name: unique("fresh"),
      argv: ["sh", "-c", `sleep 0.2; touch ${flag}; sleep 60`],
      readiness: { kind: "file", path: flag },
      ready_interval_ms: 50,
    });
    expect(fresh.state).toBe("ready");
    await connect().client.request("service_stop", { name: fresh.name });
  });

  it("keeps a stop's reason when the readiness deadline passes during it", async () => {
    const name = unique("stopping");
    const starting = start({
      name,
      // Ignores SIGTERM, so the stop waits out its grace period past the deadline.
      argv: ["sh", "-c", "trap '' TERM; sleep 60"],
      readiness: { kind: "file", path: "/nonexistent/flag" },
      ready_timeout_ms: 300,
      ready_interval_ms: 50,
    });
    await new Promise((r) => setTimeout(r, 100));
    const stopped = await connect().client.request("service_stop", { name });
    expect(stopped.state).toBe("stopped");
    expect(stopped.stop_reason).toBe("stopped on request");
    expect((await starting).state).toBe("stopped");
  }, 20_000);

  it("warns when a published guest port listens on loopback only", async () => {
    const port = await freePort();
    const server = `require("http").createServer((q, s) => s.end("hi")).listen(${port}, "127.0.0.1")`;
    const started = await start({
      name: unique("loopback"),
      argv: [process.execPath, "-e", server],
      readiness: { kind: "tcp", port },
      ready_interval_ms: 50,
      published_guest_ports: [port],
    });
    expect(started.state).toBe("ready");
    expect(started.warnings).toEqual([
      `guest port ${port} is bound to 127.0.0.1 only, so its published host port gets no answer: make the service listen on 0.0.0.0`,
    ]);
    await connect().client.request("service_stop", { name: started.name });
  });

  it("closes each run's log, so restarts leak no file descriptors", async () => {
    const name = unique("again");
    const fds = () => fs.readdirSync("/proc/self/fd").length;
    await start({ name, argv: ["true"] });
    await new Promise((r) => setTimeout(r, 100));
    const before = fds();
    for (let i = 0; i < 10; i++) {
      await start({ name, argv: ["true"] });
      for (let j = 0; j < 50; j++) {
        const s = await connect().client.request("service_status", { name });
        if (s.state !== "running") break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(fds()).toBeLessThanOrEqual(before + 2);
  });

  it("rejects bad names and readiness", async () => {
    expect((await rejection(start({ name: "../x", argv: ["true"] }))).message).toContain(
      "invalid service name",
    );
    expect(
      (
        await rejection(
          start({ name: unique("r"), argv: ["true"], readiness: { kind: "http", url: "ftp://x" } }),
        )
      ).message,
    ).toContain("http://");
    const badPort = await rejection(
      start({
        name: unique("r"),
        argv: ["sleep", "60"],
        readiness: { kind: "http", url: "http://localhost:99999/" },
      }),
    );
    expect(badPort.message).toContain("http:// or https:// URL");
  });
});
