/**
 * The MCP cold-start mode end to end through the official client, as a chat
 * host drives it: a fresh machine for a project, a network fetch through the
 * egress proxy, the app started as a service with readiness and published
 * on the host's 127.0.0.1, its logs, the summary, and cleanup. Inspect mode
 * never gets a network, whatever the model asks.
 */
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { commitFiles } from "./helpers.js";
import { callTool, closeMcpClients, connectMcp } from "./mcp-client.js";

const cleanups: (() => void)[] = [];
afterEach(async () => {
  await closeMcpClients();
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function fetchHost(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: "/health", timeout: 20_000 }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve(`${res.statusCode} ${body}`));
      })
      .on("error", reject);
  });
}

/** A small web app: a Python server answering /health, with its own README. */
function webApp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-cold-start-"));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  commitFiles(dir, {
    "README.md": "Run `python3 app.py` and open http://localhost:8080/health\n",
    "app.py": [
      "from http.server import BaseHTTPRequestHandler, HTTPServer",
      "class H(BaseHTTPRequestHandler):",
      "    def do_GET(self):",
      "        body = b'ok from the app' if self.path == '/health' else b'hello'",
      "        self.send_response(200); self.end_headers(); self.wfile.write(body)",
      "print('listening on 8080', flush=True)",
      "HTTPServer(('0.0.0.0', 8080), H).serve_forever()",
      "",
    ].join("\n"),
  });
  return dir;
}

describe("MCP cold-start mode", () => {
  it("validates a fresh repository: fetch, start the app, reach it from the host, summarise", async () => {
    const client = await connectMcp(["--mode", "cold-start"], webApp());
    const { tools } = await client.listTools();
    const create = tools.find((t) => t.name === "workspace_create")!;
    expect(Object.keys(create.inputSchema.properties ?? {})).toContain("network_policy");
    expect(tools.map((t) => t.name)).toEqual(
      expect.arrayContaining(["service_start", "service_status", "service_logs", "service_stop"]),
    );

    const created = await callTool(client, "workspace_create", {
      network_policy: "egress+published-ports",
    });
    expect(created.error).toBe(false);
    const id = created.data.id as string;
    expect(created.data).toMatchObject({
      network_policy: "egress+published-ports",
      origin_kind: "git",
    });
    try {
      const fetched = await callTool(client, "workspace_exec", {
        workspace_id: id,
        command:
          "python3 -c \"import urllib.request as u; print(u.urlopen('http://deb.debian.org/debian/dists/bookworm/Release').status)\"",
      });
      expect(fetched.data).toMatchObject({ exit_code: 0, stdout: "200\n" });

      const started = await callTool(client, "service_start", {
        workspace_id: id,
        name: "app",
        command: "python3 app.py",
        ready_http: "http://127.0.0.1:8080/health",
        publish: ["8080"],
      });
      expect(started.error).toBe(false);
      expect(started.data).toMatchObject({ name: "app", state: "ready" });
      const port = (started.data.published_ports as { host_port: number }[])[0]!.host_port;
      expect(started.text).toContain(`http://127.0.0.1:${port}`);
      expect(await fetchHost(port)).toBe("200 ok from the app");

      const status = await callTool(client, "service_status", { workspace_id: id, name: "app" });
      expect(status.data).toMatchObject({
        state: "ready",
        published_ports: [expect.objectContaining({ host_port: port, guest_port: 8080 })],
      });
      const logs = await callTool(client, "service_logs", { workspace_id: id, name: "app" });
      expect(logs.data.text).toContain("listening on 8080");
      const stopped = await callTool(client, "service_stop", { workspace_id: id, name: "app" });
      expect(stopped.data).toMatchObject({ state: "stopped", published_ports: [] });
      await expect(fetchHost(port)).rejects.toThrow();

      const failed = await callTool(client, "service_start", {
        workspace_id: id,
        name: "broken",
        command: "python3 missing.py",
        ready_tcp: 9000,
      });
      expect(failed.error).toBe(true);
      expect(failed.text).toContain("service_failed");
      expect(failed.text).toContain("missing.py");
      expect(failed.text).toContain("service_logs");

      const summary = await callTool(client, "workspace_summary", { workspace_id: id });
      expect(summary.data.services).toEqual([
        expect.objectContaining({ name: "app", start_state: "ready", state: "stopped" }),
        expect.objectContaining({ name: "broken", start_state: "failed", state: "failed" }),
      ]);
    } finally {
      await callTool(client, "workspace_delete", { workspace_id: id });
    }
  });

  it("never gives an inspect-mode workspace a network, whatever the call asks", async () => {
    const client = await connectMcp(["--mode", "inspect"]);
    const { tools } = await client.listTools();
    const create = tools.find((t) => t.name === "workspace_create")!;
    expect(Object.keys(create.inputSchema.properties ?? {})).not.toContain("network_policy");
    const created = await callTool(client, "workspace_create", { network_policy: "egress" });
    try {
      expect(created.data).toMatchObject({ network_policy: "off" });
    } finally {
      await callTool(client, "workspace_delete", { workspace_id: created.data.id });
    }
  });

  it("reports a workspace's network with vm_network_info (workspace-full)", async () => {
    const client = await connectMcp(["--profile", "workspace-full"]);
    const created = await callTool(client, "workspace_create", {
      network_policy: "egress",
      allow_host_ports: [11434],
    });
    const id = created.data.id as string;
    try {
      const info = await callTool(client, "vm_network_info", { vm_id: id });
      expect(info.data).toMatchObject({
        workspace_id: id,
        policy: "egress",
        guest_address: "10.0.2.15",
        egress_proxy: "http://10.0.2.100:3128",
        host_address: "10.0.2.254",
        allowed_host_ports: [11434],
        published_ports: [],
      });
      expect(info.text).toContain("host ports reachable at 10.0.2.254: 11434");
    } finally {
      await callTool(client, "workspace_delete", { workspace_id: id });
    }
  });
});
