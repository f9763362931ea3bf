/**
 * Network policies, services and published ports on real guests, through
 * the CLI: what a guest can reach under each policy, a service with
 * readiness published on the host's 127.0.0.1, and the networked warm image.
 * The only outside destination is the package archive this host uses.
 */
import fs from "node:fs";
import path from "node:path";
import http from "node:http";
import type net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { DoctorReport } from "../src/daily-loop/doctor.js";
import type { PrepareResult } from "../src/daily-loop/prepare.js";
import type { WorkspaceSummary } from "../src/workspaces/summary.js";
import type {
  Workspace,
  WorkspaceExecResult,
  WorkspaceService,
} from "../src/workspaces/payloads.js";
import { listeners, runCli, runCliJson, sharedPaths, waitFor } from "./helpers.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function create(...flags: string[]): Promise<Workspace> {
  const { code, json, stderr } = await runCliJson<Workspace>(["workspace", "create", ...flags]);
  if (code !== 0) throw new Error(`create failed: ${JSON.stringify(json)} ${stderr}`);
  cleanups.push(() => runCli(["workspace", "delete", json.id]));
  return json;
}

async function exec(
  id: string,
  command: string,
  timeoutSeconds = 30,
): Promise<WorkspaceExecResult> {
  const { json } = await runCliJson<WorkspaceExecResult>([
    "workspace",
    "exec",
    id,
    "--timeout-seconds",
    String(timeoutSeconds),
    "--",
    command,
  ]);
  return json;
}

/** `pyro workspace service start ARGS --json` (flags, then "--" and the command). */
function serviceStart(...args: string[]) {
  return runCliJson<WorkspaceService>(["workspace", "service", "start", ...args]);
}

/** A host server on 127.0.0.1 that answers with `body`. */
async function hostServer(body: string): Promise<http.Server> {
  const server = http.createServer((_req, res) => res.end(body));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

const portOf = (server: http.Server) => (server.address() as net.AddressInfo).port;

/** GET http://127.0.0.1:port/ from the host: the status and body, or the error code. */
function fetchHost(port: number): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/", timeout: 20_000 }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
  });
}

/** A guest Python probe: each target fetched, one line each ("target status" or "target error"). */
const PROBE = `
import os, sys, urllib.request
# Through the proxy means through it, even for addresses the guest's no_proxy names.
os.environ.pop("no_proxy", None); os.environ.pop("NO_PROXY", None)
for url, proxied in [(u.split("|")[0], u.endswith("|proxy")) for u in sys.argv[1:]]:
    proxy = {"http": os.environ["http_proxy"]} if proxied else {}
    handlers = [urllib.request.ProxyHandler(proxy)]
    try:
        r = urllib.request.build_opener(*handlers).open(url, timeout=20)
        print(url, r.status, r.read(100).decode(errors="replace").strip())
    except urllib.error.HTTPError as e:
        print(url, e.code, e.read(200).decode(errors="replace").strip())
    except Exception as e:
        print(url, "error", type(e).__name__)
`;

describe("network policies", () => {
  const servers: http.Server[] = [];
  let blockedPort: number;
  let allowedPort: number;
  beforeAll(async () => {
    servers.push(await hostServer("host secret"), await hostServer("model server"));
    [blockedPort, allowedPort] = servers.map(portOf) as [number, number];
  });
  afterAll(() => {
    for (const server of servers) server.close();
  });

  it("gives an off workspace no network device and no proxy", async () => {
    const ws = await create();
    expect(ws.network_policy).toBe("off");
    expect(ws.network).toMatchObject({ guest_address: null, egress_proxy: null });
    const out = await exec(ws.id, 'ls /sys/class/net; echo "proxy=${http_proxy:-none}"');
    expect(out.stdout).toBe("lo\nproxy=none\n");
  });

  it("lets an egress guest reach the package archive, never the host, except an allowed port", async () => {
    const ws = await create("--network-policy", "egress", "--allow-host-port", String(allowedPort));
    expect(ws.network).toMatchObject({
      policy: "egress",
      guest_address: "10.0.2.15",
      egress_proxy: "http://10.0.2.100:3128",
      host_address: "10.0.2.254",
      allowed_host_ports: [allowedPort],
      published_ports: [],
    });
    const apt = await exec(
      ws.id,
      "apt-get update -q >/tmp/apt.log 2>&1; echo apt=$?; tail -1 /tmp/apt.log",
      // The archive through the proxy: usually ~10 s, but once over 30 s under a loaded CI run.
      120,
    );
    expect(apt.stdout).toMatch(/^apt=0\n/);

    const targets = [
      `http://127.0.0.1:${blockedPort}/|proxy`,
      `http://10.0.2.2:${blockedPort}/|proxy`,
      `http://10.0.2.2:${blockedPort}/`,
      `http://10.0.2.254:${blockedPort}/`,
      `http://169.254.169.254/|proxy`,
      `http://host.pyro.internal:${allowedPort}/`,
    ];
    await runCli(["workspace", "file", "write", ws.id, "probe.py", "--text", PROBE]);
    const probe = await exec(ws.id, `python3 probe.py ${targets.map((t) => `'${t}'`).join(" ")}`);
    const lines = probe.stdout.trim().split("\n");
    expect(lines).toHaveLength(targets.length);
    expect(lines[0]).toMatch(
      / 403 pyro: 127.0.0.1 is not reachable from this workspace: 127.0.0.1 is the host's loopback/,
    );
    expect(lines[1]).toMatch(/ 403 .*a private network/);
    expect(lines[2]).toMatch(/ error /);
    expect(lines[3]).toMatch(/ error /);
    expect(lines[4]).toMatch(/ 403 .*link-local/);
    expect(lines[5]).toMatch(/ 200 model server$/);
    expect(probe.stdout).not.toContain("host secret");

    const publish = await serviceStart(ws.id, "web", "--publish", "8000", "--", "sleep 60");
    expect(publish.code).toBe(1);
    expect(publish.json).toMatchObject({ error: { code: "network_policy" } });
  });

  it("refuses an unknown policy, naming the three", async () => {
    const bad = await runCli(["workspace", "create", "--network-policy", "on"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("use one of off, egress, egress+published-ports");
  });
});

describe("services and published ports", () => {
  it("publishes a ready HTTP service on 127.0.0.1 only, and unpublishes it on stop, reset and delete", async () => {
    const ws = await create("--network-policy", "egress+published-ports");
    const start = () =>
      serviceStart(
        ws.id,
        "web",
        "--ready-http",
        "http://127.0.0.1:8000/",
        "--publish",
        "8000",
        "--",
        "python3 -m http.server 8000",
      );
    const started = await start();
    expect(started.code).toBe(0);
    expect(started.json).toMatchObject({ name: "web", state: "ready", workspace_id: ws.id });
    const [port] = started.json.published_ports;
    expect(port).toMatchObject({ host_address: "127.0.0.1", guest_port: 8000, service: "web" });
    const answer = await fetchHost(port!.host_port);
    expect(answer).toMatchObject({ status: 200 });
    expect((answer as { body: string }).body).toContain("Directory listing");
    expect(listeners(port!.host_port)).toEqual(["0100007F"]);

    const status = await runCliJson<Workspace>(["workspace", "status", ws.id]);
    expect(status.json.network.published_ports).toEqual([port]);
    expect(status.json.services).toEqual([
      expect.objectContaining({ name: "web", state: "ready" }),
    ]);
    const logs = await runCliJson<{ text: string }>(["workspace", "service", "logs", ws.id, "web"]);
    expect(logs.json.text).toContain('"GET / HTTP/1.1" 200');

    const stopped = await runCliJson<WorkspaceService>([
      "workspace",
      "service",
      "stop",
      ws.id,
      "web",
    ]);
    expect(stopped.json).toMatchObject({
      state: "stopped",
      stop_reason: "stopped on request",
      published_ports: [],
    });
    expect(listeners(port!.host_port)).toEqual([]);
    expect(await fetchHost(port!.host_port)).toEqual({ error: "ECONNREFUSED" });

    const again = await start();
    const second = again.json.published_ports[0]!.host_port;
    expect(listeners(second)).toEqual(["0100007F"]);
    const reset = await runCliJson<Workspace>(["workspace", "reset", ws.id]);
    expect(reset.json.network.published_ports).toEqual([]);
    expect(listeners(second)).toEqual([]);

    const third = (await start()).json.published_ports[0]!.host_port;
    expect(await fetchHost(third)).toMatchObject({ status: 200 });
    await runCli(["workspace", "delete", ws.id]);
    expect(listeners(third)).toEqual([]);
  });

  it("unpublishes the ports of a service that ends on its own, without being asked", async () => {
    const ws = await create("--network-policy", "egress+published-ports");
    const started = await serviceStart(ws.id, "brief", "--publish", "9100", "--", "sleep 3");
    expect(started.json.state).toBe("running");
    const port = started.json.published_ports[0]!.host_port;
    expect(listeners(port)).toEqual(["0100007F"]);
    await waitFor(() => listeners(port).length === 0, 30_000, "the forward to go");
    const raw = JSON.parse(
      fs.readFileSync(path.join(sharedPaths().data, "workspaces", ws.id, "workspace.json"), "utf8"),
    ) as { published_ports: unknown[]; services: { state: string; stop_reason: string }[] };
    expect(raw.published_ports).toEqual([]);
    expect(raw.services).toEqual([
      expect.objectContaining({ state: "exited", stop_reason: "exited on its own (exit code 0)" }),
    ]);
  });

  it("fails a service that is never ready, refuses a host port another workspace holds, and summarises", async () => {
    const first = await create("--network-policy", "egress+published-ports");
    const second = await create("--network-policy", "egress+published-ports");
    const zero = await serviceStart(first.id, "hold", "--publish", "0:9000", "--", "sleep 600");
    expect(zero.code).toBe(2); // port 0 is not a port
    const taken = await serviceStart(first.id, "hold", "--publish", "9000", "--", "sleep 600");
    const hostPort = taken.json.published_ports[0]!.host_port;
    const clash = await serviceStart(
      second.id,
      "other",
      "--publish",
      `${hostPort}:9000`,
      "--",
      "sleep 600",
    );
    expect(clash.code).toBe(1);
    expect(clash.json).toMatchObject({ error: { code: "conflict" } });
    expect(JSON.stringify(clash.json)).toContain(`service hold of workspace ${first.id}`);
    // A port another program holds is refused before anything starts.
    const other = await hostServer("someone else's");
    try {
      const held = await serviceStart(
        second.id,
        "web",
        "--publish",
        `${portOf(other)}:8000`,
        "--",
        "sleep 600",
      );
      expect(held.json).toMatchObject({ error: { code: "conflict" } });
      expect(JSON.stringify(held.json)).toContain("bound by another program");
      const none = await runCliJson<{ services: unknown[] }>([
        "workspace",
        "service",
        "list",
        second.id,
      ]);
      expect(none.json.services).toEqual([]);
    } finally {
      other.close();
    }

    const never = await serviceStart(
      second.id,
      "never",
      "--ready-tcp",
      "9999",
      "--ready-timeout-seconds",
      "3",
      "--publish",
      "9999",
      "--",
      "echo waiting for nothing; sleep 600",
    );
    expect(never.code).toBe(1);
    expect(never.json).toMatchObject({ error: { code: "service_failed" } });
    expect(JSON.stringify(never.json)).toContain("not ready after 3 s");
    expect(JSON.stringify(never.json)).toContain("waiting for nothing");
    const after = await runCliJson<Workspace>(["workspace", "status", second.id]);
    expect(after.json.network.published_ports).toEqual([]);
    const gone = await exec(
      second.id,
      "cat /proc/[0-9]*/cmdline | tr '\\0' ' ' | grep -c 'slee[p] 600'",
    );
    expect(gone.stdout).toBe("0\n");

    const crash = await serviceStart(
      second.id,
      "crash",
      "--ready-file",
      "/tmp/never",
      "--",
      "echo bad config >&2; exit 4",
    );
    expect(JSON.stringify(crash.json)).toContain("exited before it was ready (exit code 4)");
    expect(JSON.stringify(crash.json)).toContain("bad config");

    await runCliJson(["workspace", "service", "stop", first.id, "hold"]);
    const summary = await runCliJson<WorkspaceSummary>(["workspace", "summary", first.id]);
    expect(summary.json.services).toEqual([
      expect.objectContaining({
        name: "hold",
        start_state: "running",
        state: "stopped",
        stop_reason: "stopped on request",
        published_ports: [{ host_port: hostPort, guest_port: 9000 }],
      }),
    ]);
    const list = await runCli(["workspace", "list"]);
    expect(list.stdout.toString()).toMatch(/SERVICES/);
  });
});

describe("the networked warm image", () => {
  it("prepare --network makes it; egress creates restore it and off creates keep their own", async () => {
    const prepared = await runCliJson<PrepareResult>(["prepare", "debian:12", "--network"]);
    expect(prepared.code).toBe(0);
    expect(prepared.json.network).toBe(true);
    if (prepared.json.status === "prepared") expect(prepared.json.proof?.boot_kind).toBe("warm");
    const off = await runCliJson<PrepareResult>(["prepare", "debian:12"]);
    expect(off.json.network).toBe(false);

    const doctor = await runCliJson<DoctorReport>([
      "doctor",
      "--skip-boot",
      "--environment",
      "debian:12",
    ]);
    expect(doctor.json.daily_loop?.readiness).toBe("warm");
    expect(doctor.json.daily_loop_network).toMatchObject({ readiness: "warm", network: true });
    expect(doctor.json.checks.find((c) => c.name === "network")?.ok).toBe(true);

    const networked = await create("--network-policy", "egress");
    expect(networked.boot_kind).toBe("warm");
    const inside = await exec(
      networked.id,
      'ls /sys/class/net | tr "\\n" " "; echo "$https_proxy"',
    );
    expect(inside.stdout).toBe("eth0 lo http://10.0.2.100:3128\n");
    const plain = await create();
    expect(plain.boot_kind).toBe("warm");
    expect((await exec(plain.id, "ls /sys/class/net")).stdout).toBe("lo\n");
  });
});
