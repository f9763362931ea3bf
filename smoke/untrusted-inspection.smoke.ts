/**
 * `make smoke-untrusted-inspection`: docs/use-cases/untrusted-inspection.md
 * step by step. A chat host runs `pyro mcp serve --mode inspect` inside a
 * checkout of smoke/fixtures/malicious-repo, whose install script tries to
 * read credentials (among them a canary file on this host), write outside
 * the project (and to a path on this host), resolve names and reach the
 * internet, the host's gateway and pyro's host address (where a listener on
 * this host's 127.0.0.1 counts connections). The model asks for a network
 * anyway; the workspace has none. It reads the code, runs the script in the
 * VM, exports its findings; afterwards the host is proved untouched.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { MODE_TOOLS } from "../src/mcp/catalog.js";
import { UseCase, gitStatus, listener } from "./use-case.js";

const useCase = new UseCase();
const trap = await listener();
afterAll(async () => {
  await trap.close();
  await useCase.close();
});

it("inspects a hostile repository with no network: nothing reaches the host, findings come out", async () => {
  // The host's side: a canary "key" the script will look for, and a path it will try to write.
  const hostDir = useCase.tempDir("pyro-canary-");
  const secret = crypto.randomBytes(16).toString("hex");
  const canary = path.join(hostDir, "id_ed25519");
  fs.writeFileSync(canary, `-----BEGIN OPENSSH PRIVATE KEY-----\n${secret}\n`, { mode: 0o600 });
  const dropped = path.join(hostDir, "dropped-by-postinstall");
  const targets = [
    "read /etc/pyro/config.json",
    "url http://169.254.169.254/latest/meta-data/",
    `read ${canary}`,
    `write ${dropped}`,
    `url http://10.0.2.2:${trap.port}/`,
    `url http://10.0.2.254:${trap.port}/`,
    `url http://host.pyro.internal:${trap.port}/`,
    `socket 10.0.2.2 ${trap.port}`,
    `socket 10.0.2.254 ${trap.port}`,
    "",
  ].join("\n");
  const repo = useCase.checkout("malicious-repo", { "scripts/targets.txt": targets });

  // Step 1: the server, started by the host inside the checkout (the checkout is the seed).
  const mcp = await useCase.connect(["--mode", "inspect"], repo);
  expect(await mcp.tools()).toEqual([...MODE_TOOLS.inspect].sort());
  expect(await mcp.inputParams("workspace_create")).not.toContain("network_policy");

  // Step 2: create; a network asked for anyway is not given.
  const ws = await mcp.ok("workspace_create", {
    name: "colorful-logger",
    network_policy: "egress",
  });
  const id = ws.id as string;
  expect(ws).toMatchObject({ state: "started", network_policy: "off", origin_kind: "git" });
  expect(ws.origin_ref).toBe(fs.realpathSync(repo));

  // Step 3: a read-only look: what is there, and what the install step runs.
  const listing = await mcp.ok("workspace_file_list", { workspace_id: id, recursive: true });
  const files = (listing.entries as { path: string }[]).map((e) =>
    e.path.replace(/^\/workspace\//, ""),
  );
  expect(files).toEqual(
    expect.arrayContaining(["package.json", "index.js", "scripts/postinstall.sh"]),
  );
  const manifest = await mcp.ok("workspace_file_read", { workspace_id: id, path: "package.json" });
  expect(JSON.parse(manifest.content as string).scripts.postinstall).toBe(
    "sh scripts/postinstall.sh",
  );
  const script = await mcp.ok("workspace_file_read", {
    workspace_id: id,
    path: "scripts/postinstall.sh",
  });
  expect(script.content).toContain("/root/.ssh/id_rsa");
  expect(script.content).toContain("curl");

  // Step 4: the machine's own view: no network interface but loopback, no routes.
  const net = await mcp.exec(id, "ls /sys/class/net; tail -n +2 /proc/net/route | wc -l");
  expect(net).toMatchObject({ exit_code: 0, stdout: "lo\n0\n" });

  // Step 5: detonate it inside the VM, output kept as evidence.
  const run = await mcp.exec(
    id,
    "mkdir -p findings && sh scripts/postinstall.sh > findings/postinstall.log 2>&1; echo exit=$?; cat findings/postinstall.log",
    { timeout_seconds: 180 },
  );
  const log = run.stdout as string;
  expect(log).toMatch(/^exit=0\n/);
  expect(log).toContain("colorful-logger: native bindings ready");
  expect(log).not.toContain("LEAKED");
  for (const line of [
    "blocked read /root/.ssh/id_rsa",
    `blocked read ${canary}`,
    "blocked dns registry.npmjs.org",
    "blocked url https://registry.npmjs.org/",
    "blocked url http://deb.debian.org/debian/",
    `blocked url http://10.0.2.2:${trap.port}/`,
    `blocked url http://10.0.2.254:${trap.port}/`,
    `blocked url http://host.pyro.internal:${trap.port}/`,
    `blocked socket 10.0.2.2:${trap.port}`,
    `blocked socket 10.0.2.254:${trap.port}`,
    "blocked socket 1.1.1.1:443",
    // Writes outside /workspace land in the VM's own disk, never on the host.
    "wrote (inside the sandbox) /etc/cron.d/colorful-logger",
    `wrote (inside the sandbox) ${dropped}`,
  ])
    expect(log).toContain(`${line}\n`);

  // Step 6: the indicators, written next to the log.
  const indicators = await mcp.exec(
    id,
    "grep -nE 'curl|ssh|aws|cron|socket|getent' scripts/postinstall.sh > findings/indicators.txt; wc -l < findings/indicators.txt",
  );
  expect(Number(indicators.stdout)).toBeGreaterThan(5);

  // Step 7: export the findings, and only them.
  const out = path.join(useCase.tempDir("pyro-findings-"), "findings");
  const exported = await mcp.ok("workspace_export", {
    workspace_id: id,
    path: "findings",
    output: out,
  });
  expect(exported).toMatchObject({ output: out, kind: "directory", skipped: [] });
  expect(fs.readdirSync(out).sort()).toEqual(["indicators.txt", "postinstall.log"]);
  expect(fs.readFileSync(path.join(out, "postinstall.log"), "utf8")).toBe(
    log.replace(/^exit=0\n/, ""),
  );

  // Step 8: the report, then delete.
  const summary = await mcp.ok("workspace_summary", { workspace_id: id });
  expect(summary).toMatchObject({
    commands: expect.objectContaining({ total: 3 }),
    exports: [expect.objectContaining({ path: "/workspace/findings", output: out })],
    changes: expect.objectContaining({
      files: expect.arrayContaining([
        expect.objectContaining({ path: "findings/postinstall.log", status: "added" }),
      ]),
    }),
  });
  expect(await mcp.ok("workspace_delete", { workspace_id: id })).toMatchObject({ deleted: true });

  // The host: nothing connected, the canary is intact and was never copied out, nothing was dropped.
  expect(trap.hits()).toBe(0);
  expect(fs.readdirSync(hostDir)).toEqual(["id_ed25519"]);
  expect(fs.readFileSync(canary, "utf8")).toContain(secret);
  expect(fs.existsSync(dropped)).toBe(false);
  for (const file of fs.readdirSync(out))
    expect(fs.readFileSync(path.join(out, file), "utf8")).not.toContain(secret);
  expect(gitStatus(repo)).toBe("");
});
