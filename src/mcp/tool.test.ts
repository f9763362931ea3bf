/** defineTool / defineWorkspaceTool: schemas per surface, typed arguments, vm_* twins. */
import { describe, expect, it } from "vitest";
import * as z from "zod";
import type { Pyro } from "../index.js";
import { surfaceFor } from "./catalog.js";
import { checkVmId, defineWorkspaceTool, json, READ_ONLY, type ToolContext } from "./tool.js";
import { TOOLS } from "./tools/index.js";

function context(profile: "workspace-core" | "workspace-full"): ToolContext {
  return {
    pyro: {} as Pyro,
    surface: surfaceFor(profile, undefined),
    environment: "debian:12",
    project: undefined,
  };
}

const probe = defineWorkspaceTool({
  name: "workspace_reset",
  title: "probe",
  description: () => "probe",
  input: () => ({ snapshot: z.string().optional(), count: z.number().int().optional() }),
  gated: { snapshot: "snapshots" },
  output: z.object({}),
  annotations: READ_ONLY,
  run: async (id, args) => json({ id, snapshot: args.snapshot ?? null, count: args.count ?? 0 }),
});

describe("defineWorkspaceTool", () => {
  it("adds the id parameter and leaves gated parameters out where their feature is absent", () => {
    const core = Object.keys(probe.inputSchema(context("workspace-core")).shape);
    const full = Object.keys(probe.inputSchema(context("workspace-full")).shape);
    expect(core.sort()).toEqual(["count", "workspace_id"]);
    expect(full.sort()).toEqual(["count", "snapshot", "workspace_id"]);
  });

  it("hands the handler the id and typed arguments", async () => {
    const out = await probe.call(
      { workspace_id: "ws_1", snapshot: "s", count: 2 },
      context("workspace-full"),
    );
    expect(out.payload).toEqual({ id: "ws_1", snapshot: "s", count: 2 });
  });

  it("drops an argument for a parameter the surface hides, whatever the client sent", async () => {
    const out = await probe.call(
      { workspace_id: "ws_1", snapshot: "s", count: 2 },
      context("workspace-core"),
    );
    expect(out.payload).toEqual({ id: "ws_1", snapshot: null, count: 2 });
  });

  it("derives a twin whose id parameter is renamed, calling the same handler", async () => {
    const twin = probe.twin!({
      name: "vm_status",
      title: "twin",
      description: "twin description",
      idParam: "vm_id",
      idDescription: "a VM",
    });
    expect(twin.name).toBe("vm_status");
    expect(twin.description(context("workspace-core"))).toBe("twin description");
    expect(Object.keys(twin.inputSchema(context("workspace-core")).shape).sort()).toEqual([
      "count",
      "vm_id",
    ]);
    const out = await twin.call({ vm_id: "ws_2", count: 1 }, context("workspace-core"));
    expect(out.payload).toEqual({ id: "ws_2", snapshot: null, count: 1 });
    await expect(twin.call({ workspace_id: "ws_2" }, context("workspace-core"))).rejects.toThrow();
  });
});

describe("the tool list", () => {
  it("has vm_* lifecycle tools that take vm_id, and workspace tools that take workspace_id", () => {
    const ctx = context("workspace-full");
    const params = (name: string) =>
      Object.keys(TOOLS.find((t) => t.name === name)!.inputSchema(ctx).shape);
    for (const name of ["vm_start", "vm_exec", "vm_stop", "vm_delete", "vm_status"]) {
      expect(params(name)).toContain("vm_id");
      expect(params(name)).not.toContain("workspace_id");
    }
    expect(params("vm_exec")).toEqual(expect.arrayContaining(["command", "command_id"]));
    expect(params("workspace_exec")).toContain("workspace_id");
  });

  it("shows workspace_create's resource parameters only in workspace-full", () => {
    const create = TOOLS.find((t) => t.name === "workspace_create")!;
    expect(Object.keys(create.inputSchema(context("workspace-core")).shape)).not.toContain(
      "mem_mib",
    );
    expect(Object.keys(create.inputSchema(context("workspace-full")).shape)).toContain("mem_mib");
  });
});

describe("checkVmId", () => {
  it("takes whole vm_ ids only: a workspace named vm_build is not a VM", () => {
    expect(checkVmId("vm_0123456789ab")).toBe("vm_0123456789ab");
    for (const id of ["vm_build", "ws_0123456789ab", "vm_0123456789abc"]) {
      expect(() => checkVmId(id), id).toThrow(/not a VM made by vm_create/);
    }
  });
});
