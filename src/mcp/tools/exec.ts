/** workspace_exec: a command with a bounded wait, and a command_id to poll when it runs longer. */
import * as z from "zod";
import {
  BOUNDS,
  DEFAULTS,
  ErrorCodes,
  PyroError,
  OUTPUT_LIMITS,
  type ExecStatus,
} from "../../index.js";
import { commandReport } from "../report.js";
import {
  DESTRUCTIVE,
  defineWorkspaceTool,
  loose,
  secretEnvParam,
  type ToolContext,
  type ToolOutput,
} from "../tool.js";

export const execOutput = loose({
  status: z.enum(["completed", "running"]),
  command_id: z.string(),
  workspace_id: z.string(),
  command: z.string(),
  exit_code: z.number().optional(),
  stdout: z.string().optional(),
  stderr: z.string().optional(),
  timed_out: z.boolean().optional(),
  duration_ms: z.number().optional(),
});

function execDescription(ctx: ToolContext): string {
  const mode = ctx.surface.mode;
  const lead =
    mode === "inspect"
      ? "Run a command inside the isolated machine to inspect the code (it cannot reach the network or the host)."
      : mode === "cold-start"
        ? "Run a build, install or test command in /workspace to validate the project from a fresh machine."
        : "Run a shell command in /workspace (through `sh -lc`, as root).";
  return (
    `${lead} Returns exit_code, stdout, stderr, duration_ms and the journal sequence. A non-zero exit code is a normal result, not an error. ` +
    `The call waits up to wait_seconds (default ${DEFAULTS.execWaitSeconds}); a longer command keeps running and the result says status "running" with a command_id: call again with that command_id to wait. ` +
    `timeout_seconds (default ${DEFAULTS.execTimeoutSeconds}) kills it. Output beyond ${OUTPUT_LIMITS.modelChars} characters per stream is cut with a note.`
  );
}

/** The model-facing payload and text of a finished or running command. */
function execReport(status: ExecStatus): ToolOutput {
  if (status.status === "running") {
    return {
      payload: { ...status },
      text:
        `still running (command_id ${status.command_id}); call this tool again with the same id ` +
        `and command_id "${status.command_id}" to wait for its result. Output so far (tail):\n${status.stdout_tail}${status.stderr_tail ? `\n[stderr]\n${status.stderr_tail}` : ""}`,
    };
  }
  const shown = commandReport(
    status,
    "redirect the output to a file in /workspace and read it in parts (head, tail, sed -n)",
  );
  const head = `exit ${status.exit_code}${status.timed_out ? " (timed out: killed with its process group)" : ""} in ${status.duration_ms} ms (#${status.sequence})`;
  return {
    payload: { ...status, ...shown },
    text: `${head}\n${shown.stdout}${shown.stderr ? `\n[stderr]\n${shown.stderr}` : ""}`,
  };
}

export const workspaceExec = defineWorkspaceTool({
  name: "workspace_exec",
  title: "Run a command",
  description: execDescription,
  input: () => ({
    command: z
      .string()
      .optional()
      .describe("shell command line, run with `sh -lc` in /workspace as root"),
    timeout_seconds: z
      .number()
      .positive()
      .max(BOUNDS.execTimeoutSeconds.max)
      .optional()
      .describe(
        `kill the command (and its process group) after this long (default ${DEFAULTS.execTimeoutSeconds})`,
      ),
    wait_seconds: z
      .number()
      .min(BOUNDS.execWaitSeconds.min)
      .max(BOUNDS.execWaitSeconds.max)
      .optional()
      .describe(
        `how long this call waits for the result before returning a command_id (default ${DEFAULTS.execWaitSeconds})`,
      ),
    command_id: z
      .string()
      .optional()
      .describe(
        "instead of a command: the command_id of a command still running, to wait for its result",
      ),
    secret_env: secretEnvParam,
  }),
  gated: { secret_env: "secrets" },
  output: execOutput,
  annotations: DESTRUCTIVE,
  run: async (workspace, args, ctx) => {
    const waitSeconds = Math.min(
      BOUNDS.execWaitSeconds.max,
      args.wait_seconds ?? DEFAULTS.execWaitSeconds,
    );
    let commandId = args.command_id;
    if (commandId === undefined) {
      if (!args.command?.trim()) {
        throw new PyroError(
          ErrorCodes.UsageError,
          "give a command (or the command_id of a running one)",
          {
            hint: 'e.g. {"workspace_id": "ws_…", "command": "make test"}',
          },
        );
      }
      commandId = ctx.pyro.workspaces.execStart(workspace, args.command, {
        ...(args.timeout_seconds !== undefined ? { timeoutSeconds: args.timeout_seconds } : {}),
        ...(args.secret_env ? { secretEnv: args.secret_env } : {}),
      }).command_id;
    }
    const status = await ctx.pyro.workspaces.execWait(commandId, waitSeconds);
    return execReport(status);
  },
});
