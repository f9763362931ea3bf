/**
 * The MCP tools: name, schemas, annotations, a description written for a
 * model, and a handler that calls the SDK. Handlers hold no business logic:
 * they shape SDK payloads for a model (bounded text, a compact text copy).
 * Descriptions and parameters depend on the server's surface (profile or
 * mode): a parameter whose feature is outside the surface is absent.
 */
import * as z from "zod";
import type { ToolAnnotations } from "@modelcontextprotocol/server";
import type { Pyro } from "../sdk/pyro.js";
import type { ProjectSource } from "../workspaces/project.js";
import type { Workspace, WorkspaceExecResult } from "../workspaces/service.js";
import { formatSummary } from "../workspaces/summary.js";
import type { Surface, ToolName } from "./catalog.js";
import type { ExecJob, ExecJobs } from "./exec-jobs.js";

export interface ToolContext {
  pyro: Pyro;
  surface: Surface;
  /** Environment for workspace_create and vm_run when the call names none. */
  environment: string;
  /** The default seed of workspace_create (contract §6), when there is one. */
  project: ProjectSource | undefined;
  jobs: ExecJobs;
}

export interface ToolOutput {
  payload: Record<string, unknown>;
  text: string;
}

export interface ToolSpec {
  name: ToolName;
  title: string;
  description(ctx: ToolContext): string;
  input(ctx: ToolContext): z.ZodObject;
  output: z.ZodObject;
  annotations: ToolAnnotations;
  run(args: Record<string, unknown>, ctx: ToolContext): Promise<ToolOutput>;
}

/** Text a model gets per output stream or file; the rest is cut with a note saying how to get it. */
export const MODEL_TEXT_LIMIT = 24 * 1024;
/** How long workspace_exec waits before handing back a command id (hosts time tools out at ~60 s). */
export const DEFAULT_WAIT_SECONDS = 20;
export const MAX_WAIT_SECONDS = 45;
const DEFAULT_EXEC_TIMEOUT_SECONDS = 30;

const workspaceId = z
  .string()
  .min(1)
  .describe("the workspace's id (ws_…) or its name, as workspace_create or workspace_list gave it");

const loose = <T extends z.ZodRawShape>(shape: T) => z.looseObject(shape);

const workspaceShape = {
  id: z.string(),
  name: z.string().nullable(),
  state: z.string(),
  environment: z.string(),
  origin_kind: z.string(),
  origin_ref: z.string().nullable(),
};
const workspaceOutput = loose(workspaceShape);

const execOutput = loose({
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

/** Cut `text` for a model, saying what was cut and how to get it. */
export function clipForModel(
  text: string,
  what: string,
  howToGetRest: string,
  limit = MODEL_TEXT_LIMIT,
): { text: string; cut: boolean } {
  if (text.length <= limit) return { text, cut: false };
  return {
    text: `${text.slice(0, limit)}\n[${what} cut at ${limit} of ${text.length} characters; ${howToGetRest}]`,
    cut: true,
  };
}

/** A workspace payload with its one-line description as the text copy. */
function workspaceReport(ws: Workspace, verb = ""): ToolOutput {
  return json(ws, `${verb}${describeWorkspace(ws)}`);
}

function describeWorkspace(ws: Workspace): string {
  const label = ws.name ? `${ws.id} (${ws.name})` : ws.id;
  const seed =
    ws.origin_kind === "empty"
      ? "empty /workspace"
      : `seeded from ${ws.origin_kind} ${ws.origin_ref}`;
  return `${label}: ${ws.state}, ${ws.environment}, ${seed}, ${ws.command_count} command(s) run${ws.boot_kind ? `, ${ws.boot_kind} start` : ""}`;
}

/** The model-facing payload and text of a finished or running command. */
function execReport(job: ExecJob, workspace: string): ToolOutput {
  if (job.error !== undefined) throw job.error;
  const result = job.result;
  if (!result) {
    const payload = {
      status: "running" as const,
      command_id: job.id,
      workspace_id: job.workspace_id,
      command: job.command,
      started_at: job.started_at,
      stdout_tail: job.stdoutTail,
      stderr_tail: job.stderrTail,
    };
    return {
      payload,
      text:
        `still running (command_id ${job.id}); call workspace_exec again with workspace_id "${workspace}" ` +
        `and command_id "${job.id}" to wait for its result. Output so far (tail):\n${job.stdoutTail}${job.stderrTail ? `\n[stderr]\n${job.stderrTail}` : ""}`,
    };
  }
  return finishedExec(job.id, result);
}

function finishedExec(commandId: string, result: WorkspaceExecResult): ToolOutput {
  const rest =
    "redirect the output to a file in /workspace and read it in parts (head, tail, sed -n)";
  const stdout = clipForModel(result.stdout, "stdout", rest);
  const stderr = clipForModel(result.stderr, "stderr", rest);
  const payload = {
    status: "completed" as const,
    command_id: commandId,
    ...result,
    stdout: stdout.text,
    stderr: stderr.text,
    truncated: result.truncated || stdout.cut || stderr.cut,
  };
  const head = `exit ${result.exit_code}${result.timed_out ? " (timed out: killed with its process group)" : ""} in ${result.duration_ms} ms (#${result.sequence})`;
  return {
    payload,
    text: `${head}\n${stdout.text}${stderr.text ? `\n[stderr]\n${stderr.text}` : ""}`,
  };
}

function json(payload: object, text?: string): ToolOutput {
  return {
    payload: payload as Record<string, unknown>,
    text: text ?? JSON.stringify(payload, null, 2),
  };
}

const READ_ONLY: ToolAnnotations = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
};
const CHANGES_WORKSPACE: ToolAnnotations = {
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: false,
  openWorldHint: false,
};
const DESTRUCTIVE: ToolAnnotations = {
  readOnlyHint: false,
  destructiveHint: true,
  idempotentHint: false,
  openWorldHint: false,
};

function createDescription(ctx: ToolContext): string {
  const seed = ctx.project
    ? `By default /workspace is seeded from ${ctx.project.origin_kind === "repo" ? "the repository" : "the project"} ${ctx.project.origin_ref} (git-tracked and untracked-but-not-ignored files; never .git internals); seed_path overrides it, empty: true starts empty.`
    : "Without seed_path, /workspace starts empty.";
  const mode = ctx.surface.mode;
  const purpose =
    mode === "inspect"
      ? "Create an isolated machine to inspect untrusted code: its network is off and nothing it does reaches the host."
      : mode === "cold-start"
        ? "Create an isolated machine with the repository to validate it from scratch (install, build, test, start services)."
        : mode === "review-eval"
          ? "Create an isolated machine to review or evaluate a change; take snapshots to compare states."
          : "Create a persistent, isolated Linux machine (Debian 12) with a /workspace directory, and start it.";
  return `${purpose} ${seed} Returns the workspace (id, state, origin_kind, origin_ref); use its id with the other workspace tools. The baseline for diff and reset is taken now. Environment defaults to ${ctx.environment}.`;
}

function createInput(ctx: ToolContext): z.ZodObject {
  return z.object({
    seed_path: z
      .string()
      .optional()
      .describe(
        "host directory or .tar/.tar.gz/.tgz to seed /workspace with (default: the project)",
      ),
    empty: z
      .boolean()
      .optional()
      .describe("start with an empty /workspace even when a project is configured"),
    name: z.string().optional().describe("a unique, memorable name to use instead of the id"),
    labels: z.record(z.string(), z.string()).optional().describe("key/value labels"),
    environment: z.string().optional().describe(`environment (default ${ctx.environment})`),
    ...(ctx.surface.features.has("lifecycle")
      ? {
          vcpu_count: z.number().int().min(1).max(64).optional().describe("vCPUs (default 1)"),
          mem_mib: z.number().int().min(256).optional().describe("memory in MiB (default 1024)"),
          ttl_seconds: z
            .number()
            .positive()
            .optional()
            .describe("delete the workspace automatically after this many seconds"),
        }
      : {}),
  });
}

async function createWorkspace(args: Record<string, unknown>, ctx: ToolContext, vm = false) {
  const seedPath = args.seed_path as string | undefined;
  const useProject = !vm && !seedPath && !args.empty && ctx.project !== undefined;
  const created = await ctx.pyro.workspaces.create({
    environment: (args.environment as string | undefined) ?? ctx.environment,
    ...(seedPath ? { seedPath } : {}),
    ...(useProject
      ? {
          seedPath: ctx.project!.seedPath,
          origin: { kind: ctx.project!.origin_kind, ref: ctx.project!.origin_ref },
        }
      : {}),
    ...(args.name !== undefined ? { name: args.name as string } : {}),
    labels: {
      ...((args.labels as Record<string, string> | undefined) ?? {}),
      ...(vm ? { "pyro.kind": "vm" } : {}),
    },
    ...(args.vcpu_count !== undefined ? { vcpuCount: args.vcpu_count as number } : {}),
    ...(args.mem_mib !== undefined ? { memMib: args.mem_mib as number } : {}),
    ...(args.ttl_seconds !== undefined
      ? { ttlSeconds: args.ttl_seconds as number }
      : vm
        ? { ttlSeconds: 600 }
        : {}),
  });
  return workspaceReport(created, "created ");
}

async function startExec(ctx: ToolContext, args: Record<string, unknown>): Promise<ToolOutput> {
  const workspace = args.workspace_id as string;
  const wait = Math.min(
    MAX_WAIT_SECONDS,
    (args.wait_seconds as number | undefined) ?? DEFAULT_WAIT_SECONDS,
  );
  let job: ExecJob | undefined;
  if (typeof args.command_id === "string") {
    job = ctx.jobs.get(args.command_id);
    if (!job) {
      const running = ctx.jobs.running().map((j) => `${j.id} (${j.command})`);
      throw Object.assign(new Error(`no command ${args.command_id} in this server`), {
        modelHint: running.length
          ? `running commands: ${running.join(", ")}`
          : "finished results are in the workspace journal (workspace_logs or workspace_summary); run the command again if needed",
      });
    }
  } else {
    const command = args.command;
    if (typeof command !== "string" || !command.trim()) {
      throw Object.assign(new Error("give a command (or the command_id of a running one)"), {
        modelHint: 'e.g. {"workspace_id": "ws_…", "command": "make test"}',
      });
    }
    // Resolve now, so an unknown workspace is an error here and not later.
    const ws = ctx.pyro.workspaces.status(workspace);
    const timeoutSeconds =
      (args.timeout_seconds as number | undefined) ?? DEFAULT_EXEC_TIMEOUT_SECONDS;
    job = ctx.jobs.start(ws.id, command, (onStdout, onStderr) =>
      ctx.pyro.workspaces.exec(ws.id, command, { timeoutSeconds, onStdout, onStderr }),
    );
  }
  await ctx.jobs.wait(job, wait * 1000);
  return execReport(job, workspace);
}

function execInput(): z.ZodObject {
  return z.object({
    workspace_id: workspaceId,
    command: z
      .string()
      .optional()
      .describe("shell command line, run with `sh -lc` in /workspace as root"),
    timeout_seconds: z
      .number()
      .positive()
      .max(24 * 3600)
      .optional()
      .describe(
        `kill the command (and its process group) after this long (default ${DEFAULT_EXEC_TIMEOUT_SECONDS})`,
      ),
    wait_seconds: z
      .number()
      .min(0)
      .max(MAX_WAIT_SECONDS)
      .optional()
      .describe(
        `how long this call waits for the result before returning a command_id (default ${DEFAULT_WAIT_SECONDS})`,
      ),
    command_id: z
      .string()
      .optional()
      .describe(
        "instead of a command: the command_id of a command still running, to wait for its result",
      ),
  });
}

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
    `The call waits up to wait_seconds (default ${DEFAULT_WAIT_SECONDS}); a longer command keeps running and the result says status "running" with a command_id: call again with that command_id to wait. ` +
    `timeout_seconds (default ${DEFAULT_EXEC_TIMEOUT_SECONDS}) kills it. Output beyond ${MODEL_TEXT_LIMIT} characters per stream is cut with a note.`
  );
}

export const TOOLS: ToolSpec[] = [
  // ---- one-shot and low-level VMs ------------------------------------------
  {
    name: "vm_run",
    title: "Run one command in a fresh VM",
    description: (ctx) =>
      `Boot a fresh, disposable Linux VM (default ${ctx.environment}), run one command, return its exit code and output, and delete the VM. Nothing persists: for several steps use a workspace. A non-zero exit code is a normal result.`,
    input: (ctx) =>
      z.object({
        command: z.string().min(1).describe("shell command line (run with sh -c)"),
        environment: z.string().optional().describe(`environment (default ${ctx.environment})`),
        timeout_seconds: z.number().positive().max(3600).optional().describe("default 30"),
        vcpu_count: z.number().int().min(1).max(64).optional(),
        mem_mib: z.number().int().min(256).optional(),
      }),
    output: loose({ exit_code: z.number(), stdout: z.string(), stderr: z.string() }),
    annotations: { ...CHANGES_WORKSPACE, idempotentHint: false },
    run: async (args, ctx) => {
      const result = await ctx.pyro.run({
        environment: (args.environment as string | undefined) ?? ctx.environment,
        command: args.command as string,
        ...(args.timeout_seconds !== undefined
          ? { timeoutSeconds: args.timeout_seconds as number }
          : {}),
        ...(args.vcpu_count !== undefined ? { vcpuCount: args.vcpu_count as number } : {}),
        ...(args.mem_mib !== undefined ? { memMib: args.mem_mib as number } : {}),
      });
      const rest = "write the output to a file and print parts of it (head, tail)";
      const stdout = clipForModel(result.stdout, "stdout", rest);
      const stderr = clipForModel(result.stderr, "stderr", rest);
      return json(
        { ...result, stdout: stdout.text, stderr: stderr.text },
        `exit ${result.exit_code}\n${stdout.text}${stderr.text ? `\n[stderr]\n${stderr.text}` : ""}`,
      );
    },
  },
  {
    name: "vm_list_environments",
    title: "List environments",
    description: () =>
      "List the Linux environments a VM or workspace can use, with whether each is installed (built) on this machine. The default one is marked.",
    input: () => z.object({}),
    output: loose({ environments: z.array(loose({ name: z.string(), installed: z.boolean() })) }),
    annotations: READ_ONLY,
    run: async (_args, ctx) => {
      const environments = await ctx.pyro.environments.list();
      return json(
        { environments },
        environments
          .map(
            (e) =>
              `${e.name}${e.default ? " (default)" : ""}: ${e.installed ? "installed" : "not installed"} — ${e.description}`,
          )
          .join("\n"),
      );
    },
  },
  {
    name: "vm_create",
    title: "Create a VM",
    description: (ctx) =>
      `Create and start a bare VM (default ${ctx.environment}) that lives until vm_delete or its TTL (default 600 s). Lower level than workspace_create: no seed. Use vm_exec to run commands in it.`,
    input: (ctx) =>
      z.object({
        environment: z.string().optional().describe(`default ${ctx.environment}`),
        vcpu_count: z.number().int().min(1).max(64).optional(),
        mem_mib: z.number().int().min(256).optional(),
        ttl_seconds: z.number().positive().optional().describe("default 600"),
      }),
    output: workspaceOutput,
    annotations: CHANGES_WORKSPACE,
    run: (args, ctx) => createWorkspace(args, ctx, true),
  },
  {
    name: "vm_start",
    title: "Start a VM",
    description: () =>
      "Start a stopped VM (made by vm_create) again on its own disk; files are kept.",
    input: () => z.object({ vm_id: workspaceId }),
    output: workspaceOutput,
    annotations: { ...CHANGES_WORKSPACE, idempotentHint: true },
    run: async (args, ctx) =>
      workspaceReport(await ctx.pyro.workspaces.start(args.vm_id as string)),
  },
  {
    name: "vm_exec",
    title: "Run a command in a VM",
    description: () =>
      "Run a shell command in a VM made by vm_create. Same behaviour as workspace_exec (bounded wait, command_id for long commands).",
    input: () => execInput().omit({ workspace_id: true }).extend({ vm_id: workspaceId }),
    output: execOutput,
    annotations: DESTRUCTIVE,
    run: (args, ctx) => startExec(ctx, { ...args, workspace_id: args.vm_id }),
  },
  {
    name: "vm_stop",
    title: "Stop a VM",
    description: () => "Stop a VM made by vm_create, keeping its disk (vm_start boots it again).",
    input: () => z.object({ vm_id: workspaceId }),
    output: workspaceOutput,
    annotations: { ...CHANGES_WORKSPACE, idempotentHint: true },
    run: async (args, ctx) => workspaceReport(await ctx.pyro.workspaces.stop(args.vm_id as string)),
  },
  {
    name: "vm_delete",
    title: "Delete a VM",
    description: () => "Delete a VM made by vm_create and everything it had. Cannot be undone.",
    input: () => z.object({ vm_id: workspaceId }),
    output: loose({ workspace_id: z.string(), deleted: z.boolean() }),
    annotations: DESTRUCTIVE,
    run: async (args, ctx) => json(await ctx.pyro.workspaces.delete(args.vm_id as string)),
  },
  {
    name: "vm_status",
    title: "VM status",
    description: () =>
      "State (started, stopped, failed and why), resources and expiry of a VM made by vm_create.",
    input: () => z.object({ vm_id: workspaceId }),
    output: workspaceOutput,
    annotations: READ_ONLY,
    run: async (args, ctx) => workspaceReport(ctx.pyro.workspaces.status(args.vm_id as string)),
  },
  {
    name: "vm_reap_expired",
    title: "Delete expired VMs",
    description: () => "Delete every VM and workspace whose TTL has passed; returns their ids.",
    input: () => z.object({}),
    output: loose({ reaped: z.array(z.string()) }),
    annotations: { ...DESTRUCTIVE, idempotentHint: true },
    run: async (_args, ctx) => {
      const reaped = ctx.pyro.workspaces.reapExpired();
      return json({ reaped }, reaped.length ? `deleted ${reaped.join(", ")}` : "nothing expired");
    },
  },

  // ---- workspaces --------------------------------------------------------
  {
    name: "workspace_create",
    title: "Create a workspace",
    description: createDescription,
    input: createInput,
    output: workspaceOutput,
    annotations: CHANGES_WORKSPACE,
    run: (args, ctx) => createWorkspace(args, ctx),
  },
  {
    name: "workspace_list",
    title: "List workspaces",
    description: () =>
      "List workspaces, most recently active first, with id, name, labels, state, environment and expiry. Use it to find an id you lost.",
    input: () => z.object({}),
    output: loose({ workspaces: z.array(workspaceOutput) }),
    annotations: READ_ONLY,
    run: async (_args, ctx) => {
      const workspaces = ctx.pyro.workspaces.list();
      return json(
        { workspaces },
        workspaces.length ? workspaces.map(describeWorkspace).join("\n") : "no workspaces",
      );
    },
  },
  {
    name: "workspace_update",
    title: "Rename or relabel a workspace",
    description: () =>
      "Change a workspace's name or labels (clear_labels removes keys); the id never changes.",
    input: () =>
      z.object({
        workspace_id: workspaceId,
        name: z.string().optional(),
        labels: z.record(z.string(), z.string()).optional(),
        clear_labels: z.array(z.string()).optional(),
      }),
    output: workspaceOutput,
    annotations: { ...CHANGES_WORKSPACE, idempotentHint: true },
    run: async (args, ctx) => {
      const ws = await ctx.pyro.workspaces.update(args.workspace_id as string, {
        ...(args.name !== undefined ? { name: args.name as string } : {}),
        ...(args.labels !== undefined ? { labels: args.labels as Record<string, string> } : {}),
        ...(args.clear_labels !== undefined ? { clearLabels: args.clear_labels as string[] } : {}),
      });
      return workspaceReport(ws);
    },
  },
  {
    name: "workspace_status",
    title: "Workspace status",
    description: () =>
      "State (starting, started, stopped, failed and why), resources, seed origin, command count and expiry of a workspace.",
    input: () => z.object({ workspace_id: workspaceId }),
    output: workspaceOutput,
    annotations: READ_ONLY,
    run: async (args, ctx) =>
      workspaceReport(ctx.pyro.workspaces.status(args.workspace_id as string)),
  },
  {
    name: "workspace_logs",
    title: "Command journal",
    description: () =>
      "The commands run in a workspace since its last reset, in order, with exit codes and (bounded) output.",
    input: () => z.object({ workspace_id: workspaceId }),
    output: loose({ workspace_id: z.string(), entries: z.array(loose({ sequence: z.number() })) }),
    annotations: READ_ONLY,
    run: async (args, ctx) => {
      const logs = ctx.pyro.workspaces.logs(args.workspace_id as string);
      const text = logs.entries
        .map(
          (e) =>
            `#${e.sequence} exit ${e.exit_code}: ${e.command}\n${clipForModel(e.stdout, "stdout", "read it again by rerunning with output to a file", 2000).text}`,
        )
        .join("\n");
      return json(logs, text || "no commands yet");
    },
  },
  {
    name: "workspace_delete",
    title: "Delete a workspace",
    description: () =>
      "Delete a workspace: its machine, disk, snapshots and journal. Export anything you need first. Cannot be undone.",
    input: () => z.object({ workspace_id: workspaceId }),
    output: loose({ workspace_id: z.string(), deleted: z.boolean() }),
    annotations: DESTRUCTIVE,
    run: async (args, ctx) => {
      const deleted = await ctx.pyro.workspaces.delete(args.workspace_id as string);
      return json(deleted, `deleted ${deleted.workspace_id}`);
    },
  },
  {
    name: "workspace_stop",
    title: "Stop a workspace",
    description: () =>
      "Stop a workspace's machine, keeping its disk (workspace_start boots it again). Running processes end.",
    input: () => z.object({ workspace_id: workspaceId }),
    output: workspaceOutput,
    annotations: { ...CHANGES_WORKSPACE, idempotentHint: true },
    run: async (args, ctx) =>
      workspaceReport(await ctx.pyro.workspaces.stop(args.workspace_id as string)),
  },
  {
    name: "workspace_start",
    title: "Start a workspace",
    description: () =>
      "Start a stopped (or failed) workspace again on the same disk: files are kept, processes are not.",
    input: () => z.object({ workspace_id: workspaceId }),
    output: workspaceOutput,
    annotations: { ...CHANGES_WORKSPACE, idempotentHint: true },
    run: async (args, ctx) =>
      workspaceReport(await ctx.pyro.workspaces.start(args.workspace_id as string)),
  },
  {
    name: "workspace_fork",
    title: "Fork a workspace",
    description: () =>
      "A new workspace that starts as a copy of another's current state: its disk and, when it is running, its memory (processes, /tmp). The source pauses briefly and runs on. Use it to try two approaches side by side.",
    input: () => z.object({ workspace_id: workspaceId, name: z.string().optional() }),
    output: workspaceOutput,
    annotations: CHANGES_WORKSPACE,
    run: async (args, ctx) => {
      const ws = await ctx.pyro.workspaces.fork(args.workspace_id as string, {
        ...(args.name !== undefined ? { name: args.name as string } : {}),
      });
      return workspaceReport(ws, "forked into ");
    },
  },
  {
    name: "workspace_sync_push",
    title: "Copy host files in",
    description: () =>
      "Copy a host directory or archive into a running workspace under /workspace (dest, default /workspace). Inside a git checkout only tracked and untracked-not-ignored files go.",
    input: () =>
      z.object({
        workspace_id: workspaceId,
        source: z.string().describe("host path"),
        dest: z.string().optional().describe("path under /workspace"),
      }),
    output: loose({ workspace_id: z.string(), files: z.number() }),
    annotations: CHANGES_WORKSPACE,
    run: async (args, ctx) =>
      json(
        await ctx.pyro.workspaces.syncPush(
          args.workspace_id as string,
          args.source as string,
          args.dest as string | undefined,
        ),
      ),
  },
  {
    name: "workspace_exec",
    title: "Run a command",
    description: execDescription,
    input: execInput,
    output: execOutput,
    annotations: DESTRUCTIVE,
    run: (args, ctx) => startExec(ctx, args),
  },
  {
    name: "workspace_file_list",
    title: "List files",
    description: () =>
      "List a directory under /workspace (path relative to /workspace, default the root; recursive optional, bounded).",
    input: () =>
      z.object({
        workspace_id: workspaceId,
        path: z.string().optional(),
        recursive: z.boolean().optional(),
      }),
    output: loose({
      workspace_id: z.string(),
      path: z.string(),
      entries: z.array(loose({ path: z.string() })),
    }),
    annotations: READ_ONLY,
    run: async (args, ctx) => {
      const listing = await ctx.pyro.workspaces.listFiles(
        args.workspace_id as string,
        (args.path as string | undefined) ?? ".",
        { recursive: (args.recursive as boolean | undefined) ?? false },
      );
      const entries = listing.entries.slice(0, 2000);
      const text =
        entries
          .map(
            (e) =>
              `${e.type === "directory" ? "d" : e.type === "symlink" ? "l" : "-"} ${e.size} ${e.path}`,
          )
          .join("\n") +
        (listing.truncated || entries.length < listing.entries.length
          ? `\n[listing cut; list a subdirectory to see the rest]`
          : "");
      return json({ ...listing, entries }, text || "(empty)");
    },
  },
  {
    name: "workspace_file_read",
    title: "Read a file",
    description: () =>
      'Read a text file under /workspace (path relative to /workspace). Bounded: at most max_bytes (default 65536); says when it was cut. Binary content comes back base64 with encoding "base64".',
    input: () =>
      z.object({
        workspace_id: workspaceId,
        path: z.string().min(1),
        max_bytes: z
          .number()
          .int()
          .positive()
          .max(1024 * 1024)
          .optional(),
      }),
    output: loose({
      workspace_id: z.string(),
      path: z.string(),
      content: z.string(),
      truncated: z.boolean(),
    }),
    annotations: READ_ONLY,
    run: async (args, ctx) => {
      const file = await ctx.pyro.workspaces.readFile(
        args.workspace_id as string,
        args.path as string,
        {
          ...(args.max_bytes !== undefined ? { maxBytes: args.max_bytes as number } : {}),
        },
      );
      const note = file.truncated
        ? `\n[cut at ${file.bytes_read} of ${file.size} bytes; read the rest with workspace_exec (e.g. sed -n '2000,4000p' ${file.path})]`
        : "";
      return json(file, `${file.content}${note}`);
    },
  },
  {
    name: "workspace_file_write",
    title: "Write a file",
    description: () =>
      "Write a whole text file under /workspace (created with its directories; an existing file keeps its mode). For a small change to a large file prefer workspace_patch_apply.",
    input: () => z.object({ workspace_id: workspaceId, path: z.string().min(1), text: z.string() }),
    output: loose({ workspace_id: z.string(), path: z.string(), bytes_written: z.number() }),
    annotations: { ...CHANGES_WORKSPACE, idempotentHint: true },
    run: async (args, ctx) => {
      const written = await ctx.pyro.workspaces.writeFile(
        args.workspace_id as string,
        args.path as string,
        args.text as string,
      );
      return json(written, `wrote ${written.bytes_written} bytes to ${written.path}`);
    },
  },
  {
    name: "workspace_patch_apply",
    title: "Apply a patch",
    description: () =>
      "Apply a unified diff (paths relative to /workspace, a/ and b/ prefixes accepted) to files in /workspace. Every hunk is checked before anything is written: all or nothing. A patch that does not apply names the failing file and hunk; read the file and try again.",
    input: () => z.object({ workspace_id: workspaceId, patch: z.string().min(1) }),
    output: loose({
      workspace_id: z.string(),
      applied: z.boolean(),
      files: z.array(loose({ path: z.string() })),
    }),
    annotations: CHANGES_WORKSPACE,
    run: async (args, ctx) => {
      const applied = await ctx.pyro.workspaces.applyPatch(
        args.workspace_id as string,
        args.patch as string,
      );
      return json(applied, applied.files.map((f) => `${f.status} ${f.path}`).join("\n"));
    },
  },
  {
    name: "workspace_export",
    title: "Export to the host",
    description: () =>
      "Copy a file or directory from /workspace to a host path that does not exist yet. Never writes outside that path; unsafe entries (devices, links out) are skipped and listed.",
    input: () =>
      z.object({
        workspace_id: workspaceId,
        path: z.string().min(1).describe("file or directory under /workspace"),
        output_path: z.string().min(1).describe("host path to create"),
      }),
    output: loose({ workspace_id: z.string(), output: z.string() }),
    annotations: { ...CHANGES_WORKSPACE, openWorldHint: true },
    run: async (args, ctx) => {
      const exported = await ctx.pyro.workspaces.export(
        args.workspace_id as string,
        args.path as string,
        args.output_path as string,
      );
      return json(
        exported,
        `exported ${exported.path} to ${exported.output} (${exported.bytes} bytes)`,
      );
    },
  },
  {
    name: "workspace_diff",
    title: "Diff against the baseline",
    description: () =>
      "What changed in /workspace since create (the baseline): a unified diff of text files plus entries for added, deleted, binary, mode and type changes.",
    input: () => z.object({ workspace_id: workspaceId }),
    output: loose({ workspace_id: z.string(), changed: z.boolean(), patch: z.string() }),
    annotations: READ_ONLY,
    run: async (args, ctx) => {
      const diff = await ctx.pyro.workspaces.diff(args.workspace_id as string);
      const patch = clipForModel(
        diff.patch,
        "diff",
        "diff single files with workspace_exec (e.g. git diff or diff -u)",
      );
      const others = diff.entries
        .filter((e) => e.kind !== "text")
        .map((e) => `${e.status} ${e.kind} ${e.path}`)
        .join("\n");
      return json(
        { ...diff, patch: patch.text },
        diff.changed
          ? `${patch.text}${others ? `\n${others}` : ""}`
          : "no changes since the baseline",
      );
    },
  },
  {
    name: "workspace_reset",
    title: "Reset a workspace",
    description: (ctx) =>
      `The normal retry step: a fresh machine (processes, /tmp and everything outside /workspace as new) with /workspace back at the baseline${ctx.surface.features.has("snapshots") ? " or a named snapshot" : ""}; the journal starts over; id and name stay. Fast (restored from a warm snapshot when prepared). Export or snapshot anything you want to keep first.`,
    input: (ctx) =>
      z.object({
        workspace_id: workspaceId,
        ...(ctx.surface.features.has("snapshots")
          ? {
              snapshot: z
                .string()
                .optional()
                .describe("named snapshot to restore (default baseline)"),
            }
          : {}),
      }),
    output: workspaceOutput,
    annotations: DESTRUCTIVE,
    run: async (args, ctx) => {
      const reset = await ctx.pyro.workspaces.reset(args.workspace_id as string, {
        ...(args.snapshot !== undefined ? { snapshot: args.snapshot as string } : {}),
      });
      return json(reset, `reset ${describeWorkspace(reset)} to ${reset.restored_from}`);
    },
  },
  {
    name: "workspace_summary",
    title: "Review a workspace",
    description: () =>
      "One review of what happened since the last reset: commands (with exit codes), files changed against the baseline, and file writes, patches, exports, syncs and snapshots. Use it before reporting back.",
    input: () => z.object({ workspace_id: workspaceId }),
    output: loose({ workspace_id: z.string(), commands: loose({ total: z.number() }) }),
    annotations: READ_ONLY,
    run: async (args, ctx) => {
      const summary = await ctx.pyro.workspaces.summary(args.workspace_id as string);
      return json(summary, formatSummary(summary));
    },
  },

  // ---- snapshots ---------------------------------------------------------
  {
    name: "snapshot_create",
    title: "Snapshot /workspace",
    description: () =>
      "Save /workspace under a name, to come back to with workspace_reset (snapshot). `baseline` always exists.",
    input: () => z.object({ workspace_id: workspaceId, name: z.string().min(1) }),
    output: loose({ workspace_id: z.string(), name: z.string() }),
    annotations: CHANGES_WORKSPACE,
    run: async (args, ctx) => {
      const snap = await ctx.pyro.workspaces.createSnapshot(
        args.workspace_id as string,
        args.name as string,
      );
      return json(snap, `snapshot ${snap.name} saved (${snap.bytes} bytes)`);
    },
  },
  {
    name: "snapshot_list",
    title: "List snapshots",
    description: () =>
      "The named snapshots of a workspace's /workspace (baseline first), with when each was taken.",
    input: () => z.object({ workspace_id: workspaceId }),
    output: loose({ workspace_id: z.string(), snapshots: z.array(loose({ name: z.string() })) }),
    annotations: READ_ONLY,
    run: async (args, ctx) => {
      const list = ctx.pyro.workspaces.listSnapshots(args.workspace_id as string);
      return json(list, list.snapshots.map((s) => `${s.name} (${s.created_at})`).join("\n"));
    },
  },
  {
    name: "snapshot_delete",
    title: "Delete a snapshot",
    description: () => "Delete a named snapshot of /workspace (the baseline cannot be deleted).",
    input: () => z.object({ workspace_id: workspaceId, name: z.string().min(1) }),
    output: loose({ workspace_id: z.string(), deleted: z.boolean() }),
    annotations: DESTRUCTIVE,
    run: async (args, ctx) =>
      json(ctx.pyro.workspaces.deleteSnapshot(args.workspace_id as string, args.name as string)),
  },
];
