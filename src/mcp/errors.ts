/**
 * Failures as MCP tool errors a model can act on: the code and message,
 * then the fix worded in terms of this server's tools (never CLI commands a
 * model cannot run; what only the user can do is said as such).
 */
import { toPyroError, type Fix } from "../index.js";
import type { Surface, ToolName } from "./catalog.js";

export function toolErrorText(error: unknown, surface: Surface): string {
  const e = toPyroError(error);
  const fix = e.fix ? fixForModel(e.fix, surface) : e.hint;
  return `error [${e.code}]: ${e.message}${fix ? `\nfix: ${fix}` : ""}`;
}

export function fixForModel(fix: Fix, surface: Surface): string {
  const has = (tool: ToolName) => surface.tools.includes(tool);
  switch (fix.kind) {
    case "start_workspace":
      return has("workspace_start")
        ? "call workspace_start to boot it again (its files are kept)"
        : has("workspace_reset")
          ? "call workspace_reset to bring it back at its baseline, or workspace_create for a new one"
          : "call workspace_create for a new workspace";
    case "stop_workspace":
      return has("workspace_stop")
        ? "call workspace_stop first (its disk is kept), or read it while it runs with workspace_file_list and workspace_file_read"
        : "read it while it runs with workspace_file_list and workspace_file_read, or ask the user to stop it";
    case "find_workspace":
      return fix.known.length
        ? `use one of the known workspaces: ${fix.known.join(", ")}`
        : "there are no workspaces: call workspace_create first";
    case "free_slot":
      return (
        `running: ${fix.running.join(", ")}; ` +
        (has("workspace_delete")
          ? "delete a workspace you no longer need with workspace_delete"
          : "ask the user to stop one") +
        ", or ask the user to raise PYRO_MAX_RUNNING"
      );
    case "delete_snapshot":
      return has("snapshot_delete")
        ? `delete it first with snapshot_delete (name "${fix.snapshot}") or choose another name`
        : "choose another name";
    case "reread_file":
      return "read the file with workspace_file_read and make a patch against its current content";
    case "stay_in_workspace":
      return "use a path relative to /workspace (no .., no symlinks that lead out)";
    case "find_command":
      return fix.running.length
        ? `running commands: ${fix.running.map((c) => `${c.command_id} (${c.command})`).join(", ")}`
        : "finished results are in the workspace journal (workspace_logs or workspace_summary); run the command again if needed";
    case "run_setup":
      return `the host lacks packages pyro needs: ask the user to run \`pyro setup\` as root${fix.packages?.length ? ` (or apt-get install ${fix.packages.join(" ")})` : ""}`;
    case "run_doctor":
      return `ask the user to run \`pyro doctor\`${fix.note ? `; ${fix.note}` : ""}`;
    case "pull_environment":
      return `${fix.note ? `${fix.note}; then ` : ""}ask the user to run \`pyro env pull${fix.environment ? ` ${fix.environment}` : ""}\``;
    case "find_service":
      return fix.known.length
        ? `use one of the services of ${fix.workspace}: ${fix.known.join(", ")}`
        : `${fix.workspace} has no services: start one with service_start`;
    case "read_service_logs":
      return has("service_logs")
        ? `read its log with service_logs (service "${fix.service}", all: true)`
        : "run it with workspace_exec to see its output";
    case "create_with_network":
      return `the network policy is chosen at creation: call workspace_create with network_policy "${fix.policy}"`;
    case "free_host_port":
      return `host port ${fix.port} is taken: publish another, or give only the guest port so a free host port is chosen`;
    case "find_shell":
      return fix.known.length
        ? `use one of the open shells of ${fix.workspace}: ${fix.known.join(", ")}`
        : `${fix.workspace} has no open shells: open one with shell_open`;
    case "open_shell":
      return has("shell_open") ? "open a new shell with shell_open" : "this shell is gone";
    case "find_secret":
      return fix.known.length
        ? `use one of the secrets of ${fix.workspace}: ${fix.known.join(", ")}`
        : `${fix.workspace} has no secrets: they can only be given at workspace_create`;
  }
}
