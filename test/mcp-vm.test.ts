/**
 * The MCP server's one-shot VMs (vm_create and its twins): their own vm_
 * ids, never in workspace lists, and vm_reap_expired touches only them.
 */
import { afterEach, describe, expect, it } from "vitest";
import { callTool, closeMcpClients, connectMcp } from "./mcp-client.js";

afterEach(closeMcpClients);

describe("vm_* tools", () => {
  it("make VMs with vm_ ids that workspace_list leaves out, and reap only expired VMs", async () => {
    const client = await connectMcp(["--profile", "workspace-full"]);
    const created: { tool: string; param: string; id: string }[] = [];
    const make = async (tool: string, args: Record<string, unknown>) => {
      const result = await callTool(client, tool, args);
      expect(result.error, result.text).toBe(false);
      const id = result.data.id as string;
      created.push(
        tool === "vm_create"
          ? { tool: "vm_delete", param: "vm_id", id }
          : { tool: "workspace_delete", param: "workspace_id", id },
      );
      return result.data;
    };
    try {
      const vm = await make("vm_create", {});
      const vmId = vm.id as string;
      expect(vmId).toMatch(/^vm_[0-9a-f]{12}$/);
      expect(vm.kind).toBe("vm");
      const ran = await callTool(client, "vm_exec", { vm_id: vmId, command: "echo in-vm" });
      expect(ran.data).toMatchObject({ exit_code: 0, stdout: "in-vm\n" });

      // Made together: every create reaps what has expired, so neither may come after the
      // other. Stopped at once: a running one's supervisor deletes it when it expires.
      const ttl = 20;
      const madeAt = Date.now();
      const [expiringVm, expiringWorkspace] = await Promise.all([
        make("vm_create", { ttl_seconds: ttl }),
        make("workspace_create", { ttl_seconds: ttl }),
      ]);
      const expiring = expiringVm.id as string;
      const workspaceId = expiringWorkspace.id as string;
      expect(workspaceId).toMatch(/^ws_/);
      await Promise.all([
        callTool(client, "vm_stop", { vm_id: expiring }),
        callTool(client, "workspace_stop", { workspace_id: workspaceId }),
      ]);
      // A workspace is not a VM: vm_* tools say which tools to use instead.
      const wrong = await callTool(client, "vm_status", { vm_id: workspaceId });
      expect(wrong.error).toBe(true);
      expect(wrong.text).toMatch(/not a VM made by vm_create/);

      await new Promise((resolve) => setTimeout(resolve, madeAt + ttl * 1000 + 500 - Date.now()));
      const reaped = await callTool(client, "vm_reap_expired", {});
      expect(reaped.data.reaped).toEqual([expiring]);
      const status = await callTool(client, "workspace_status", { workspace_id: workspaceId });
      expect(status.error, status.text).toBe(false);

      const listed = await callTool(client, "workspace_list", {});
      const ids = (listed.data.workspaces as { id: string }[]).map((w) => w.id);
      expect(ids).not.toContain(vmId);
    } finally {
      for (const { tool, param, id } of created) await callTool(client, tool, { [param]: id });
    }
  });
});
