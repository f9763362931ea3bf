/**
 * Disk tools against a real guest, through the CLI and the MCP server: a
 * file written by exec before stop is listed and read offline, a running
 * workspace is refused with the way out, the export is an ext4 image that
 * debugfs reads, and the workspace boots again on its disk afterwards.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { DiskExport, DiskListing, DiskRead, Workspace } from "../src/index.js";
import { runCli, runCliJson } from "./helpers.js";
import { callTool, closeMcpClients, connectMcp } from "./mcp-client.js";

const created: string[] = [];

afterEach(async () => {
  await closeMcpClients();
  for (const id of created.splice(0)) await runCli(["workspace", "delete", id]);
});

const SECRET = "disk-secret-value-42";

describe("disk tools on a stopped workspace", () => {
  it("list and read a file written before stop, offline; refuse while running; export ext4", async () => {
    const { json: ws } = await runCliJson<Workspace>([
      "workspace",
      "create",
      "--secret",
      `TOKEN=${SECRET}`,
    ]);
    expect(ws.state).toBe("started");
    created.push(ws.id);

    const running = await runCliJson<{ error: { code: string; hint: string } }>([
      "workspace",
      "disk",
      "list",
      ws.id,
    ]);
    expect(running.code).toBe(1);
    expect(running.json.error.code).toBe("workspace_state");
    expect(running.json.error.hint).toContain(`pyro workspace stop ${ws.id}`);

    const exec = await runCli([
      "workspace",
      "exec",
      ws.id,
      "--",
      "mkdir -p notes && printf 'written before stop\\n' > notes/today.txt && cp /run/pyro-secrets/TOKEN leak.txt",
    ]);
    expect(exec.code).toBe(0);
    expect((await runCli(["workspace", "stop", ws.id])).code).toBe(0);

    const listing = await runCliJson<DiskListing>([
      "workspace",
      "disk",
      "list",
      ws.id,
      "--recursive",
    ]);
    expect(listing.code).toBe(0);
    expect(listing.json.path).toBe("/workspace");
    expect(listing.json.entries).toContainEqual(
      expect.objectContaining({ path: "notes/today.txt", type: "file", size: 20 }),
    );

    const read = await runCliJson<DiskRead>([
      "workspace",
      "disk",
      "read",
      ws.id,
      "/workspace/notes/today.txt",
    ]);
    expect(read.json).toMatchObject({ content: "written before stop\n", truncated: false });
    const plain = await runCli(["workspace", "disk", "read", ws.id, "leak.txt", "--content-only"]);
    expect(plain.stdout.toString()).toBe("[REDACTED]");

    const root = await runCliJson<DiskListing>(["workspace", "disk", "list", ws.id, "/"]);
    expect(root.json.excluded).toEqual(["/dev", "/proc", "/run", "/sys", "/tmp"]);
    const secrets = await runCliJson<{ error: { code: string } }>([
      "workspace",
      "disk",
      "read",
      ws.id,
      "/run/pyro-secrets/TOKEN",
    ]);
    expect(secrets.json.error.code).toBe("path_not_allowed");

    const client = await connectMcp(["--profile", "workspace-full"]);
    const viaMcp = await callTool(client, "workspace_disk_read", {
      workspace_id: ws.id,
      path: "notes/today.txt",
    });
    expect(viaMcp.error).toBe(false);
    expect(viaMcp.data).toMatchObject({ content: "written before stop\n", truncated: false });
    const listed = await callTool(client, "workspace_disk_list", {
      workspace_id: ws.id,
      path: "/",
    });
    expect(listed.data).toMatchObject({ path: "/", excluded: root.json.excluded });
    expect(listed.text).toContain("d 4096 workspace");
    expect(listed.text).toContain("note: runtime-only, not listed: /dev, /proc, /run, /sys, /tmp");
    expect(listed.data.notes).toEqual(["runtime-only, not listed: /dev, /proc, /run, /sys, /tmp"]);

    const output = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pyro-disk-")), "disk.ext4");
    const exported = await runCliJson<DiskExport>([
      "workspace",
      "disk",
      "export",
      ws.id,
      "--output",
      output,
    ]);
    expect(exported.json).toMatchObject({ output, format: "raw", filesystem: "ext4" });
    const debugfs = (request: string) =>
      execFileSync("debugfs", ["-c", "-R", request, output], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      });
    expect(debugfs("cat /workspace/notes/today.txt")).toBe("written before stop\n");
    // The secret's tmpfs was never on the disk.
    expect(debugfs("ls /run")).not.toContain("pyro-secrets");
    const again = await runCli(["workspace", "disk", "export", ws.id, "--output", output]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("already exists");
    fs.rmSync(path.dirname(output), { recursive: true, force: true });

    // The disk boots again, as it was.
    expect((await runCli(["workspace", "start", ws.id])).code).toBe(0);
    const after = await runCli(["workspace", "exec", ws.id, "--", "cat notes/today.txt"]);
    expect(after.stdout.toString()).toBe("written before stop\n");
  });
});
