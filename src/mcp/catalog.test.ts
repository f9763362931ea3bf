import { describe, expect, it } from "vitest";
import {
  MODES,
  MODE_TOOLS,
  PENDING,
  PROFILES,
  PROFILE_TOOLS,
  TOOL_NAMES,
  surfaceFor,
} from "./catalog.js";
import { TOOLS } from "./tools/index.js";

describe("the MCP catalog", () => {
  it("names the contract's 45 tools, each once", () => {
    expect(TOOL_NAMES).toHaveLength(45);
    expect(new Set(TOOL_NAMES).size).toBe(45);
  });

  it("has profiles that each contain the previous one", () => {
    expect(PROFILES).toEqual(["vm-run", "workspace-core", "workspace-full"]);
    for (const tool of PROFILE_TOOLS["vm-run"])
      expect(PROFILE_TOOLS["workspace-core"]).toContain(tool);
    expect([...PROFILE_TOOLS["workspace-full"]].sort()).toEqual([...TOOL_NAMES].sort());
    expect(PROFILE_TOOLS["workspace-core"]).toHaveLength(15);
  });

  it("gives every mode its own set from the contract", () => {
    expect(MODES).toEqual(["repro-fix", "inspect", "cold-start", "review-eval"]);
    expect(MODE_TOOLS.inspect).not.toContain("workspace_patch_apply");
    expect(MODE_TOOLS.inspect).not.toContain("workspace_file_write");
    expect(MODE_TOOLS["cold-start"]).toContain("service_start");
    expect(MODE_TOOLS["review-eval"]).toContain("shell_open");
  });

  it("has a tool spec for every tool that is not pending, and none for pending ones", () => {
    const specs = TOOLS.map((t) => t.name).sort();
    expect(specs).toEqual(TOOL_NAMES.filter((t) => PENDING[t] === undefined).sort());
  });

  it("has every contract tool landed: workspace-full registers them all, disk tools included", () => {
    expect(PENDING).toEqual({});
    const surface = surfaceFor("workspace-full", undefined);
    expect(surface.tools).toEqual([...TOOL_NAMES]);
    expect(surface.pending).toEqual([]);
    for (const profile of ["vm-run", "workspace-core"] as const)
      expect(surfaceFor(profile, undefined).tools).not.toContain("workspace_disk_read");
    for (const mode of MODES)
      expect(surfaceFor("workspace-full", mode).tools).not.toContain("workspace_disk_list");
    expect(surfaceFor("workspace-full", undefined).features.has("snapshots")).toBe(true);
    expect(surfaceFor("workspace-core", undefined).features.has("snapshots")).toBe(false);
  });

  it("has review-eval's whole tool set, and secrets only in workspace-full", () => {
    const review = surfaceFor(undefined, "review-eval");
    expect(review.pending).toEqual([]);
    expect(review.tools).toEqual([...MODE_TOOLS["review-eval"]]);
    expect(surfaceFor("workspace-full", undefined).features.has("secrets")).toBe(true);
    for (const mode of [undefined, "inspect", "review-eval", "cold-start", "repro-fix"] as const)
      expect(surfaceFor(undefined, mode).features.has("secrets")).toBe(false);
    for (const mode of ["inspect", "review-eval", "cold-start", "repro-fix"] as const)
      expect(surfaceFor("workspace-full", mode).features.has("secrets")).toBe(false);
  });

  it("narrows a profile with a mode: the tools and parameters both have", () => {
    const core = surfaceFor("workspace-core", "cold-start");
    expect(core.tools).toEqual(
      MODE_TOOLS["cold-start"].filter((t) => PROFILE_TOOLS["workspace-core"].includes(t)),
    );
    expect(core.tools).not.toContain("service_start");
    expect(core.features.has("network")).toBe(false);
    const full = surfaceFor("workspace-full", "cold-start");
    expect(full.tools).toEqual([...MODE_TOOLS["cold-start"]]);
    expect(full.features.has("network")).toBe(true);
    expect(surfaceFor("vm-run", "repro-fix").tools).toEqual([]);
  });

  it("shows network parameters in workspace-full and cold-start only", () => {
    expect(surfaceFor("workspace-full", undefined).features.has("network")).toBe(true);
    expect(surfaceFor(undefined, "cold-start").features.has("network")).toBe(true);
    expect(surfaceFor(undefined, "cold-start").tools).toContain("service_start");
    expect(surfaceFor("workspace-core", undefined).features.has("network")).toBe(false);
    expect(surfaceFor("workspace-full", "inspect").features.has("network")).toBe(false);
    expect(surfaceFor(undefined, "repro-fix").features.has("network")).toBe(false);
  });
});
