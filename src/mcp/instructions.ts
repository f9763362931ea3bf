/** Server instructions: how a model should use this server, per mode. */
import type { Surface } from "./catalog.js";

/**
 * What `pyro mcp serve` prints at startup, and the instructions say, when
 * the default environment is not built: the first create builds it inside
 * a tool call, which can outlast a host's tool timeout.
 */
export function coldEnvironmentNote(environment: string): string {
  return `${environment} is not built on this machine yet: the first workspace_create or vm_run builds it inside that tool call (several minutes), which can outlast a chat host's tool timeout (the build carries on; a retry after it is fast). Run \`pyro prepare ${environment}\` once to avoid that.`;
}

export function serverInstructions(
  surface: Surface,
  project: string | undefined,
  environment: { environment: string; ready: boolean } = { environment: "", ready: true },
): string {
  const cold = environment.ready
    ? ""
    : ` When this server started, ${coldEnvironmentNote(environment.environment)} If the user is present, ask them to run it before the first create.`;
  return modeInstructions(surface, project) + cold;
}

function modeInstructions(surface: Surface, project: string | undefined): string {
  const seed = project
    ? `New workspaces are seeded from ${project} unless you pass seed_path (or empty: true).`
    : "New workspaces start with an empty /workspace unless you pass seed_path.";
  const common =
    "pyro gives you disposable, isolated Linux machines (real VMs, Debian 12) on the user's computer. " +
    "Commands run as root in /workspace; nothing you do there touches the host except workspace_export. " +
    "A non-zero exit code is a normal result. " +
    (surface.tools.includes("workspace_exec")
      ? "Long commands return a command_id: call workspace_exec again with it. "
      : "") +
    "Results carry notes (in the text and in structuredContent) when output was cut: they say how to read the rest.";
  switch (surface.mode) {
    case "repro-fix":
      return `${common} ${seed} Loop: workspace_create → reproduce with workspace_exec → read files → fix with workspace_patch_apply or workspace_file_write → rerun → workspace_diff to show the change → workspace_summary. When an attempt goes wrong, workspace_reset gives a fresh machine at the baseline (cheap: use it instead of undoing by hand). Delete the workspace when done.`;
    case "inspect":
      return `${common} ${seed} Mode: inspecting untrusted code. The machine has no network; treat everything in it as hostile and never run its output on the host. Read with workspace_file_list and workspace_file_read, probe with workspace_exec, export only what the user asks for, and finish with workspace_summary and workspace_delete.`;
    case "cold-start":
      return `${common} ${seed} Mode: validate a repository from a fresh machine: workspace_create with network_policy "egress+published-ports" (installs need the network; HTTP(S) goes through a proxy pyro sets in the guest), then install, build and test with workspace_exec exactly as a new contributor would, reading the README with workspace_file_read. Start the app with service_start (a readiness check such as ready_http, and publish to reach it from the host's 127.0.0.1); read service_logs when it fails. Report what worked and what failed with workspace_summary, then workspace_delete.`;
    case "review-eval":
      return `${common} ${seed} Mode: review or evaluate a change: workspace_create, snapshot_create before each experiment, workspace_exec to run checks, a shell (shell_open, shell_write, shell_read with plain output) for anything interactive such as a REPL or a prompt, workspace_reset (to the baseline or a snapshot) between attempts, workspace_summary for the report, workspace_delete at the end.`;
    default:
      if (surface.profile === "vm-run")
        return `${common} Use vm_run for one command in a fresh VM that is deleted afterwards; vm_list_environments lists environments.`;
      return `${common} ${seed} Typical loop: workspace_create → workspace_exec / workspace_file_read / workspace_patch_apply → workspace_diff → workspace_summary → workspace_delete; workspace_reset is the cheap retry. vm_run is for one-off commands that need no state.`;
  }
}
