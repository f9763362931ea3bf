/** Every kind of fix is worded for both faces: a command line for the CLI, a tool call for MCP. */
import { describe, expect, it } from "vitest";
import { surfaceFor } from "../mcp/catalog.js";
import { fixForModel, toolErrorText } from "../mcp/errors.js";
import { ErrorCodes, PyroError, type Fix } from "../index.js";
import { cliHint, fixForCli } from "./fixes.js";

const FIXES: Fix[] = [
  { kind: "start_workspace", workspace: "fix-42" },
  { kind: "stop_workspace", workspace: "fix-42" },
  { kind: "find_workspace", known: ["ws_1 (a)"] },
  { kind: "find_workspace", known: [] },
  { kind: "free_slot", running: ["ws_1", "b"] },
  { kind: "delete_snapshot", workspace: "fix-42", snapshot: "mid" },
  { kind: "reread_file", path: "app.py" },
  { kind: "stay_in_workspace" },
  { kind: "find_command", running: [{ command_id: "cmd_1", command: "make" }] },
  { kind: "run_setup", packages: ["busybox-static"] },
  { kind: "run_doctor" },
  { kind: "pull_environment", environment: "debian:12", note: "check the archive" },
];

describe("fix wording", () => {
  it("words every fix for the CLI with pyro commands and for MCP without CLI commands of the workspace tools", () => {
    const surface = surfaceFor("workspace-full", undefined);
    for (const fix of FIXES) {
      expect(fixForCli(fix).length, fix.kind).toBeGreaterThan(0);
      const model = fixForModel(fix, surface);
      expect(model.length, fix.kind).toBeGreaterThan(0);
      expect(model, fix.kind).not.toMatch(/pyro workspace/);
    }
  });

  it("keeps the CLI's hints as they were", () => {
    expect(fixForCli({ kind: "find_workspace", known: [] })).toBe(
      "there are no workspaces; create one with `pyro workspace create`",
    );
    expect(fixForCli({ kind: "delete_snapshot", workspace: "w", snapshot: "s" })).toBe(
      "delete it first (`pyro workspace snapshot delete w s`) or choose another name",
    );
    expect(fixForCli({ kind: "run_doctor" })).toBe(
      "run `pyro doctor` to check QEMU and acceleration",
    );
  });

  it("names the tools the surface has: workspace_start where it exists, else workspace_reset", () => {
    const fix: Fix = { kind: "start_workspace", workspace: "w" };
    expect(fixForModel(fix, surfaceFor("workspace-full", undefined))).toMatch(/workspace_start/);
    expect(fixForModel(fix, surfaceFor(undefined, "repro-fix"))).toMatch(/workspace_reset/);
  });

  it("prefers the fix over the plain hint, and falls back to the hint", () => {
    const both = new PyroError(ErrorCodes.WorkspaceState, "stopped", {
      hint: "plain",
      fix: { kind: "start_workspace", workspace: "w" },
    });
    expect(cliHint(both)).toMatch(/pyro workspace start w/);
    const plain = new PyroError(ErrorCodes.Conflict, "taken", { hint: "choose another name" });
    expect(cliHint(plain)).toBe("choose another name");
    expect(toolErrorText(plain, surfaceFor("workspace-core", undefined))).toBe(
      "error [conflict]: taken\nfix: choose another name",
    );
  });
});
