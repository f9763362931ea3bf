/**
 * `make smoke-cold-start-validation`: docs/use-cases/cold-start-validation.md
 * step by step. A chat host runs `pyro mcp serve --mode cold-start
 * --environment debian:12-build --repo-url REPO`, REPO a repository made
 * from smoke/fixtures/node-web-app (a to-do API with a dev server and one
 * npm dependency tree), cloned on the host as the seed. The model follows the README on a fresh machine:
 * installs the dependencies from the npm registry through pyro's egress
 * proxy, runs the tests, starts the dev server as a service published on
 * the host's 127.0.0.1 (checked from the host), writes and exports a
 * report, stops the service and summarises.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { MODE_TOOLS } from "../src/mcp/catalog.js";
import { UseCase, fetchHost, gitStatus } from "./use-case.js";

const ENVIRONMENT = "debian:12-build";
/** Where Debian keeps CA certificates added locally (e.g. a company's TLS-intercepting proxy). */
const LOCAL_CAS = "/usr/local/share/ca-certificates";
const useCase = new UseCase([ENVIRONMENT]);
afterAll(() => useCase.close());

it("a fresh machine: README → npm ci through the proxy → tests → dev server on a published port → report", async () => {
  const project = useCase.checkout("node-web-app");

  // Step 1: the server.
  const mcp = await useCase.connect([
    "--mode",
    "cold-start",
    "--environment",
    ENVIRONMENT,
    "--repo-url",
    project,
  ]);
  expect(await mcp.tools()).toEqual([...MODE_TOOLS["cold-start"]].sort());

  // Step 2: a networked machine that can publish ports.
  const ws = await mcp.ok("workspace_create", {
    name: "todo-api",
    network_policy: "egress+published-ports",
  });
  const id = ws.id as string;
  expect(ws).toMatchObject({
    state: "started",
    environment: ENVIRONMENT,
    network_policy: "egress+published-ports",
    origin_kind: "repo",
  });
  expect(ws.origin_ref).toContain(project);

  // Step 3: what a new contributor reads first.
  const readme = await mcp.ok("workspace_file_read", { workspace_id: id, path: "README.md" });
  expect(readme.content).toContain("npm ci");
  expect(readme.content).toContain("npm run dev");

  // Step 4: the toolchain, then the dependencies, from the npm registry through the egress proxy.
  const tools = await mcp.exec(id, "node --version && npm --version");
  expect(tools.stdout).toMatch(/^v18\.\d+\.\d+\n9\.\d+\.\d+\n$/);
  // Only behind a TLS-intercepting proxy (as on the machines this runs on): the guest trusts the CAs the host added.
  const localCas = fs.existsSync(LOCAL_CAS)
    ? fs.readdirSync(LOCAL_CAS).filter((f) => f.endsWith(".crt"))
    : [];
  if (localCas.length > 0) {
    const trusted = await mcp.exec(
      id,
      [
        ...localCas.map(
          (f) =>
            `cat > /usr/local/share/ca-certificates/${f} <<'EOF'\n${fs.readFileSync(path.join(LOCAL_CAS, f), "utf8").trim()}\nEOF`,
        ),
        // update-ca-certificates would do, but takes a minute under emulation; npm alone needs the CA here.
        "cat /etc/ssl/certs/ca-certificates.crt /usr/local/share/ca-certificates/*.crt > /root/ca-bundle.pem",
        "echo cafile=/root/ca-bundle.pem >> /root/.npmrc && echo trusted",
      ].join("\n"),
      { timeout_seconds: 300 },
    );
    expect(trusted, JSON.stringify(trusted)).toMatchObject({ exit_code: 0, stdout: "trusted\n" });
  }
  const install = await mcp.exec(id, "npm ci --no-audit --no-fund", { timeout_seconds: 900 });
  expect(install.exit_code, `${install.stdout}\n${install.stderr}`).toBe(0);
  expect(install.stdout).toMatch(/added 5 packages/);

  // Step 5: the tests.
  const tests = await mcp.exec(id, "npm test", { timeout_seconds: 300 });
  expect(tests.exit_code, `${tests.stdout}\n${tests.stderr}`).toBe(0);
  expect(tests.stdout).toMatch(/# pass 1\n/);
  expect(tests.stdout).toMatch(/# fail 0\n/);

  // Step 6: the dev server, as a service with a readiness check, published on the host.
  const started = await mcp.ok("service_start", {
    workspace_id: id,
    name: "dev",
    command: "npm run dev",
    ready_http: "http://127.0.0.1:3000/health",
    ready_timeout_seconds: 50,
    publish: ["3000"],
  });
  expect(started).toMatchObject({ name: "dev", state: "ready" });
  const published = started.published_ports as { host_port: number; guest_port: number }[];
  expect(published).toEqual([expect.objectContaining({ guest_port: 3000 })]);
  const port = published[0]!.host_port;

  // Step 7: it answers on the host's 127.0.0.1.
  const health = await fetchHost(port, "/health");
  expect(health.status).toBe(200);
  expect(JSON.parse(health.body)).toEqual({ status: "ok", todos: 1 });
  const todo = await fetchHost(port, "/todos/1");
  expect(JSON.parse(todo.body)).toMatchObject({ id: 1, title: "write the README" });
  expect((await fetchHost(port, "/todos/9")).status).toBe(404);
  const status = await mcp.ok("service_status", { workspace_id: id, name: "dev" });
  expect(status).toMatchObject({ state: "ready", published_ports: published });
  const logs = await mcp.ok("service_logs", { workspace_id: id, name: "dev" });
  expect(logs.text).toContain("todo-api dev server listening on http://0.0.0.0:3000");

  // Step 8: a report, written in the workspace and exported.
  const report = await mcp.exec(
    id,
    [
      "{ echo '# todo-api: cold-start validation'",
      "echo",
      'echo "- node $(node --version), npm $(npm --version)"',
      "echo '- npm ci: ok'",
      "echo '- npm test: ok'",
      'echo "- GET /health: $(curl -s http://127.0.0.1:3000/health)"',
      "echo",
      "npm ls --all",
      "} > validation-report.md 2>&1; tail -n +3 validation-report.md | head -4",
    ].join("; "),
    { timeout_seconds: 120 },
  );
  expect(report.exit_code).toBe(0);
  expect(report.stdout).toContain('- GET /health: {"status":"ok","todos":1}');
  const out = path.join(useCase.tempDir("pyro-cold-start-out-"), "validation-report.md");
  expect(
    await mcp.ok("workspace_export", {
      workspace_id: id,
      path: "validation-report.md",
      output: out,
    }),
  ).toMatchObject({ output: out });
  expect(fs.readFileSync(out, "utf8")).toContain("polka@0.5.2");

  // Step 9: stop the service (the port goes away), summarise, delete.
  expect(await mcp.ok("service_stop", { workspace_id: id, name: "dev" })).toMatchObject({
    state: "stopped",
    published_ports: [],
  });
  await expect(fetchHost(port, "/health")).rejects.toThrow();
  const summary = await mcp.ok("workspace_summary", { workspace_id: id });
  expect(summary).toMatchObject({
    environment: ENVIRONMENT,
    commands: expect.objectContaining({ failed: 0 }),
    services: [expect.objectContaining({ name: "dev", start_state: "ready", state: "stopped" })],
    exports: [expect.objectContaining({ path: "/workspace/validation-report.md" })],
  });
  const commands = (summary.commands as { items: { command: string }[] }).items.map(
    (c) => c.command,
  );
  expect(commands).toEqual(expect.arrayContaining(["npm ci --no-audit --no-fund", "npm test"]));
  expect(await mcp.ok("workspace_delete", { workspace_id: id })).toMatchObject({ deleted: true });
  expect(gitStatus(project)).toBe("");
});
