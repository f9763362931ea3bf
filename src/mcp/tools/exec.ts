/**
 * workspace_exec: a command with a bounded wait, and a command_id to poll
 * when it runs longer. While the call waits it sends progress (the latest
 * output line) to a client that asked for it.
 */
import * as z from "zod";
import {
  BOUNDS,
  DEFAULTS,
  ErrorCodes,
  OUTPUT_LIMITS,
  PyroError,
  type ExecStatus,
} from "../../index.js";
import { RERUN_TO_FILE, commandReport, commandText } from "../report.js";
import {
  DESTRUCTIVE,
  defineWorkspaceTool,
  json,
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
  truncated: z.boolean().optional(),
  duration_ms: z.number().optional(),
  stdout_tail: z.string().optional(),
  stderr_tail: z.string().optional(),
});

/** What every exec description says about how a command runs (src/protocol/command.ts, src/agent/process.ts). */
export const HOW_COMMANDS_RUN =
  "It runs as `sh -lc COMMAND` in /workspace as root: sh is dash (POSIX; wrap bash syntax in `bash -c '…'`), a login shell (/etc/profile and ~/.profile are read), with no stdin (reads see end of file), HOME=/root and LANG=C.UTF-8.";

function execDescription(ctx: ToolContext): string {
  const mode = ctx.surface.mode;
  const lead =
    mode === "inspect"
      ? "Run a command inside the isolated machine to inspect the code (it cannot reach the network or the host)."
      : mode === "cold-start"
        ? "Run a build, install or test command in /workspace to validate the project from a fresh machine."
        : "Run a shell command line in the workspace.";
  return (
    `${lead} ${HOW_COMMANDS_RUN} Returns exit_code, stdout, stderr, duration_ms and the journal sequence; a non-zero exit code is a normal result, not an error. ` +
    `Give either command (to start one) or command_id (to wait for one started earlier), not both. ` +
    `The call waits up to wait_seconds (default ${DEFAULTS.execWaitSeconds}), sending progress with the latest output line when the client asked for progress; a longer command keeps running and the result says status "running" with a command_id: call again with that command_id to wait. ` +
    `timeout_seconds (default ${DEFAULTS.execTimeoutSeconds}) kills it with its process group. Output beyond ${OUTPUT_LIMITS.modelChars} characters per stream is cut, with a marker and a note saying how to read the rest.`
  );
}

/** The model-facing payload and text of a finished or running command. */
function execReport(status: ExecStatus, timeoutSeconds: number | undefined): ToolOutput {
  if (status.status === "running") {
    const tail = `${status.stdout_tail}${status.stderr_tail ? `\n[stderr]\n${status.stderr_tail}` : ""}`;
    return json(
      status,
      `still running (command_id ${status.command_id}).${tail ? ` Output so far (its end):\n${tail}` : " No output yet."}`,
      [
        `the command is still running: call this tool again with the same id and command_id "${status.command_id}" (and no command) to wait for its result${timeoutSeconds ? `; it is killed after ${timeoutSeconds} s` : ""}`,
        tail &&
          `stdout_tail and stderr_tail are the last ${OUTPUT_LIMITS.liveTailBytes / 1024} KiB of each stream so far; the final result has all of it`,
      ],
    );
  }
  const { notes, ...shown } = commandReport(status, RERUN_TO_FILE);
  const head = `exit ${status.exit_code}${status.timed_out ? " (timed out: killed with its process group)" : ""} in ${status.duration_ms} ms (#${status.sequence})`;
  return json({ ...status, ...shown }, commandText(head, shown), [
    status.timed_out &&
      "it ran out of time and was killed with its process group: give a larger timeout_seconds if it needs longer",
    ...notes,
  ]);
}

export const workspaceExec = defineWorkspaceTool({
  name: "workspace_exec",
  title: "Run a command",
  description: execDescription,
  input: () => ({
    command: z
      .string()
      .optional()
      .describe(
        "the shell command line to start (run with `sh -lc` in /workspace as root). Give this or command_id, not both",
      ),
    timeout_seconds: z
      .number()
      .positive()
      .max(BOUNDS.execTimeoutSeconds.max)
      .optional()
      .describe(
        `with command: kill it (and its process group) after this many seconds (default ${DEFAULTS.execTimeoutSeconds}, at most ${BOUNDS.execTimeoutSeconds.max})`,
      ),
    wait_seconds: z
      .number()
      .min(BOUNDS.execWaitSeconds.min)
      .max(BOUNDS.execWaitSeconds.max)
      .optional()
      .describe(
        `how long this call waits for the result before returning status "running" and a command_id (default ${DEFAULTS.execWaitSeconds}, at most ${BOUNDS.execWaitSeconds.max}); the command keeps running either way`,
      ),
    command_id: z
      .string()
      .optional()
      .describe(
        'the command_id of a command a previous call left "running", to wait for its result. Give this or command, not both',
      ),
    secret_env: secretEnvParam,
  }),
  gated: { secret_env: "secrets" },
  output: execOutput,
  annotations: DESTRUCTIVE,
  run: async (workspace, args, ctx, call) => {
    const waitSeconds = Math.min(
      BOUNDS.execWaitSeconds.max,
      args.wait_seconds ?? DEFAULTS.execWaitSeconds,
    );
    const hasCommand = args.command !== undefined && args.command.trim() !== "";
    // Either-or lives here, not in the schema: a top-level oneOf/anyOf is refused by some hosts.
    if (hasCommand === (args.command_id !== undefined)) {
      throw new PyroError(
        ErrorCodes.UsageError,
        hasCommand
          ? "give command or command_id, not both"
          : "give a command to run (or the command_id of a running one)",
        {
          hint: hasCommand
            ? "command starts a new command; command_id waits for one already running"
            : 'e.g. {"command": "make test"}, or {"command_id": "cmd_…"} to wait for a running one',
        },
      );
    }
    const commandId =
      args.command_id ??
      ctx.pyro.workspaces.execStart(workspace, args.command!, {
        ...(args.timeout_seconds !== undefined ? { timeoutSeconds: args.timeout_seconds } : {}),
        ...(args.secret_env ? { secretEnv: args.secret_env } : {}),
      }).command_id;
    const status = await ctx.pyro.workspaces.execWait(commandId, waitSeconds, {
      workspace,
      onProgress: (p) =>
        call.progress(
          p.latest_line ?? `running for ${Math.round(p.elapsed_ms / 1000)} s, no output yet`,
        ),
      ...(call.signal ? { signal: call.signal } : {}),
    });
    return execReport(
      status,
      args.command_id === undefined
        ? (args.timeout_seconds ?? DEFAULTS.execTimeoutSeconds)
        : undefined,
    );
  },
});
