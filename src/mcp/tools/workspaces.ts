/** Workspace lifecycle and review tools: create, list, status, update, stop, start, fork, delete, reset, diff, summary, logs. */
import * as z from "zod";
import {
  BOUNDS,
  DEFAULTS,
  NETWORK_POLICIES,
  OUTPUT_LIMITS,
  SEED_MODES,
  formatSummary,
  type JournalEntry,
} from "../../index.js";
import { clipForModel, describeWorkspace, workspaceOutput, workspaceReport } from "../report.js";
import {
  CHANGES_WORKSPACE,
  DESTRUCTIVE,
  READ_ONLY,
  defineTool,
  defineWorkspaceTool,
  environmentParam,
  json,
  loose,
  type Note,
  type ToolContext,
} from "../tool.js";

/** vCPU, memory and TTL parameters, shared by workspace_create and vm_create. */
export function resourceParams(ttlDefault?: number) {
  return {
    vcpu_count: z
      .number()
      .int()
      .min(BOUNDS.vcpuCount.min)
      .max(BOUNDS.vcpuCount.max)
      .optional()
      .describe(`vCPUs (default ${DEFAULTS.vcpuCount})`),
    mem_mib: z
      .number()
      .int()
      .min(BOUNDS.memMib.min)
      .max(BOUNDS.memMib.max)
      .optional()
      .describe(`memory in MiB (default ${DEFAULTS.memMib})`),
    ttl_seconds: z
      .number()
      .positive()
      .optional()
      .describe(
        ttlDefault === undefined
          ? "delete the workspace automatically after this many seconds"
          : `delete it automatically after this many seconds (default ${ttlDefault})`,
      ),
  };
}

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
  return `${purpose} ${seed} Returns the workspace (id, state, origin_kind, origin_ref); use its id with the other workspace tools. The baseline for diff and reset is taken now. Environment defaults to ${ctx.environment}; an environment not yet built on this machine is built first, inside this call (minutes: the result then says so).`;
}

export const workspaceCreate = defineTool({
  name: "workspace_create",
  title: "Create a workspace",
  description: createDescription,
  input: (ctx) => ({
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
    seed_mode: z
      .enum(SEED_MODES)
      .optional()
      .describe(
        "which files of a git checkout to seed: tracked, worktree (tracked + untracked-not-ignored; the default) or all (ignored files too)",
      ),
    include_git: z
      .boolean()
      .optional()
      .describe("seed the checkout's .git too (history and branches), e.g. to commit or bisect"),
    name: z
      .string()
      .optional()
      .describe("a unique, memorable name, usable wherever the id is (default none)"),
    labels: z
      .record(z.string(), z.string())
      .optional()
      .describe('key/value labels to tag the workspace with, e.g. {"task": "issue-12"}'),
    environment: environmentParam(ctx),
    ...resourceParams(),
    network_policy: z
      .enum(NETWORK_POLICIES)
      .optional()
      .describe(
        'default "off" (no network device). "egress": outbound HTTP(S) through a proxy that pyro sets in the guest (pip, npm, apt-get, git over https work; the host and private networks stay unreachable). "egress+published-ports": also lets service_start publish ports on the host\'s 127.0.0.1',
      ),
    allow_host_ports: z
      .array(z.number().int().min(1).max(65535))
      .optional()
      .describe(
        "ports of the host's 127.0.0.1 the guest may reach at host.pyro.internal (10.0.2.254), e.g. a local model server; needs a network policy",
      ),
    secrets: z
      .record(z.string(), z.string())
      .optional()
      .describe(
        "NAME → value: each becomes the file /run/pyro-secrets/NAME in the guest (root-only) and is replaced by [REDACTED] in every output; pass one to a command with secret_env. Names are environment-variable names",
      ),
    secret_files: z
      .record(z.string(), z.string())
      .optional()
      .describe("NAME → path of a host file whose text is the secret (at most 64 KiB)"),
  }),
  gated: {
    vcpu_count: "lifecycle",
    mem_mib: "lifecycle",
    ttl_seconds: "lifecycle",
    network_policy: "network",
    allow_host_ports: "network",
    secrets: "secrets",
    secret_files: "secrets",
  },
  output: workspaceOutput,
  annotations: CHANGES_WORKSPACE,
  run: async (args, ctx) => {
    const created = await ctx.pyro.workspaces.create({
      environment: args.environment ?? ctx.environment,
      seedPath: args.seed_path,
      seedMode: args.seed_mode,
      includeGit: args.include_git,
      empty: args.empty,
      project: ctx.project,
      name: args.name,
      labels: args.labels ?? {},
      vcpuCount: args.vcpu_count,
      memMib: args.mem_mib,
      ttlSeconds: args.ttl_seconds,
      networkPolicy: args.network_policy,
      allowHostPorts: args.allow_host_ports,
      secrets: args.secrets,
      secretFiles: args.secret_files,
    });
    return workspaceReport(created, "created ");
  },
});

export const workspaceList = defineTool({
  name: "workspace_list",
  title: "List workspaces",
  description: () =>
    "List workspaces, most recently active first, with id, name, labels, state, environment and expiry. Use it to find an id you lost.",
  input: () => ({}),
  output: loose({ workspaces: z.array(workspaceOutput) }),
  annotations: READ_ONLY,
  run: async (_args, ctx) => {
    const workspaces = ctx.pyro.workspaces.list();
    return json(
      { workspaces },
      workspaces.length ? workspaces.map(describeWorkspace).join("\n") : "no workspaces",
    );
  },
});

export const workspaceUpdate = defineWorkspaceTool({
  name: "workspace_update",
  title: "Rename or relabel a workspace",
  description: () =>
    "Change a workspace's name or labels (clear_labels removes keys); the id never changes.",
  input: () => ({
    name: z.string().optional().describe("the new unique name (the id stays the same)"),
    labels: z
      .record(z.string(), z.string())
      .optional()
      .describe("labels to set (key/value); other labels are kept"),
    clear_labels: z.array(z.string()).optional().describe("label keys to remove"),
  }),
  output: workspaceOutput,
  annotations: { ...CHANGES_WORKSPACE, idempotentHint: true },
  run: async (id, args, ctx) =>
    workspaceReport(
      await ctx.pyro.workspaces.update(id, {
        name: args.name,
        labels: args.labels,
        clearLabels: args.clear_labels,
      }),
    ),
});

export const workspaceStatus = defineWorkspaceTool({
  name: "workspace_status",
  title: "Workspace status",
  description: () =>
    "State (starting, started, stopped, failed and why), resources, seed origin, command count and expiry of a workspace.",
  input: () => ({}),
  output: workspaceOutput,
  annotations: READ_ONLY,
  run: async (id, _args, ctx) => workspaceReport(ctx.pyro.workspaces.status(id)),
});

/** Characters of each stream a journal listing shows per command (one command, with sequence, shows more). */
const LOG_LIST_CHARS = 2000;

const RERUN_HINT =
  "to see all of it, run the command again writing its output to a file and read that in parts with workspace_exec (sed -n, tail, grep)";

export const workspaceLogs = defineWorkspaceTool({
  name: "workspace_logs",
  title: "Command journal",
  description: () =>
    `The commands run in a workspace since its last reset, in order, with exit codes and output: up to ${LOG_LIST_CHARS} characters of each stream per command, or, for one command (sequence), up to ${OUTPUT_LIMITS.modelChars}. The journal itself keeps the first ${OUTPUT_LIMITS.journalChars} characters of each stream.`,
  input: () => ({
    sequence: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        "only this command (its sequence number, #N in workspace_exec results), with more of its output",
      ),
  }),
  output: loose({
    workspace_id: z.string(),
    entries: z.array(loose({ sequence: z.number(), command: z.string(), exit_code: z.number() })),
  }),
  annotations: READ_ONLY,
  run: async (id, args, ctx) => {
    const logs = ctx.pyro.workspaces.logs(id, { sequence: args.sequence });
    const limit = args.sequence === undefined ? LOG_LIST_CHARS : OUTPUT_LIMITS.modelChars;
    const how =
      args.sequence === undefined
        ? "pass sequence to see more of one command's output"
        : RERUN_HINT;
    const cuts: string[] = [];
    const entries = logs.entries.map((e) => {
      const shown = logEntry(e, limit, how);
      cuts.push(...shown.notes.filter((n): n is string => typeof n === "string"));
      return shown.entry;
    });
    const text = entries
      .map(
        (e) =>
          `#${e.sequence} exit ${e.exit_code}${e.timed_out ? " (timed out)" : ""}: ${e.command}\n${e.stdout}${e.stderr ? `${e.stdout.endsWith("\n") || !e.stdout ? "" : "\n"}[stderr]\n${e.stderr}` : ""}`,
      )
      .join("\n");
    return json({ ...logs, entries }, text || "no commands yet", [
      ...(args.sequence !== undefined
        ? cuts
        : [
            cuts.length > 0 &&
              `${cuts.length} stream(s) were cut at ${LOG_LIST_CHARS} characters (marked in place): call workspace_logs with sequence N to see up to ${OUTPUT_LIMITS.modelChars} characters of command #N`,
          ]),
      entries.some((e) => e.truncated) &&
        `entries marked truncated lost output before the journal (it keeps the first ${OUTPUT_LIMITS.journalChars} characters of each stream); ${RERUN_HINT}`,
    ]);
  },
});

/** A journal entry cut for a model: each stream bounded, with its marker. */
function logEntry(
  entry: JournalEntry,
  limit: number,
  how: string,
): { entry: JournalEntry; notes: Note[] } {
  const stdout = clipForModel(entry.stdout, `#${entry.sequence} stdout`, how, limit);
  const stderr = clipForModel(entry.stderr, `#${entry.sequence} stderr`, how, limit);
  return {
    entry: { ...entry, stdout: stdout.text, stderr: stderr.text },
    notes: [stdout.note, stderr.note],
  };
}

export const workspaceDelete = defineWorkspaceTool({
  name: "workspace_delete",
  title: "Delete a workspace",
  description: () =>
    "Delete a workspace: its machine, disk, snapshots and journal. Export anything you need first. Cannot be undone.",
  input: () => ({}),
  output: loose({ workspace_id: z.string(), deleted: z.boolean() }),
  annotations: DESTRUCTIVE,
  run: async (id, _args, ctx) => {
    const deleted = await ctx.pyro.workspaces.delete(id);
    return json(deleted, `deleted ${deleted.workspace_id}`);
  },
});

export const workspaceStop = defineWorkspaceTool({
  name: "workspace_stop",
  title: "Stop a workspace",
  description: () =>
    "Stop a workspace's machine, keeping its disk (workspace_start boots it again). Running processes end.",
  input: () => ({}),
  output: workspaceOutput,
  annotations: { ...CHANGES_WORKSPACE, idempotentHint: true },
  run: async (id, _args, ctx) => workspaceReport(await ctx.pyro.workspaces.stop(id)),
});

export const workspaceStart = defineWorkspaceTool({
  name: "workspace_start",
  title: "Start a workspace",
  description: () =>
    "Start a stopped (or failed) workspace again on the same disk: files are kept, processes are not.",
  input: () => ({}),
  output: workspaceOutput,
  annotations: { ...CHANGES_WORKSPACE, idempotentHint: true },
  run: async (id, _args, ctx) => workspaceReport(await ctx.pyro.workspaces.start(id)),
});

export const workspaceFork = defineWorkspaceTool({
  name: "workspace_fork",
  title: "Fork a workspace",
  description: () =>
    "A new workspace that starts as a copy of another's current state: its disk and, when it is running, its memory (processes, /tmp). The source pauses briefly and runs on. Use it to try two approaches side by side.",
  input: () => ({
    name: z.string().optional().describe("a unique name for the new workspace (default none)"),
  }),
  output: workspaceOutput,
  annotations: CHANGES_WORKSPACE,
  run: async (id, args, ctx) =>
    workspaceReport(await ctx.pyro.workspaces.fork(id, { name: args.name }), "forked into "),
});

export const workspaceReset = defineWorkspaceTool({
  name: "workspace_reset",
  title: "Reset a workspace",
  description: (ctx) =>
    `The normal retry step: a fresh machine (processes, /tmp and everything outside /workspace as new) with /workspace back at the baseline${ctx.surface.features.has("snapshots") ? " or a named snapshot" : ""}; the journal starts over; id and name stay. Fast (restored from a warm image when prepared). Export or snapshot anything you want to keep first.`,
  input: () => ({
    snapshot: z.string().optional().describe("named snapshot to restore (default baseline)"),
  }),
  gated: { snapshot: "snapshots" },
  output: workspaceOutput,
  annotations: DESTRUCTIVE,
  run: async (id, args, ctx) => {
    const reset = await ctx.pyro.workspaces.reset(id, { snapshot: args.snapshot });
    return json(reset, `reset ${describeWorkspace(reset)} to ${reset.restored_from}`);
  },
});

export const workspaceDiff = defineWorkspaceTool({
  name: "workspace_diff",
  title: "Diff against the baseline",
  description: () =>
    "What changed in /workspace since create (the baseline): a unified diff of text files plus entries for added, deleted, binary, mode and type changes.",
  input: () => ({}),
  output: loose({ workspace_id: z.string(), changed: z.boolean(), patch: z.string() }),
  annotations: READ_ONLY,
  run: async (id, _args, ctx) => {
    const diff = await ctx.pyro.workspaces.diff(id);
    const patch = clipForModel(
      diff.patch,
      "the patch",
      "entries lists every changed file; read the ones you need with workspace_file_read",
    );
    const others = diff.entries
      .filter((e) => e.kind !== "text")
      .map((e) => `${e.status} ${e.kind} ${e.path}`)
      .join("\n");
    return json(
      { ...diff, patch: patch.text, truncated: patch.cut },
      diff.changed
        ? `${patch.text}${others ? `\n${others}` : ""}`
        : "no changes since the baseline",
      [patch.note],
    );
  },
});

export const workspaceSummary = defineWorkspaceTool({
  name: "workspace_summary",
  title: "Review a workspace",
  description: () =>
    "One review of what happened since the last reset: commands (with exit codes), files changed against the baseline, and file writes, patches, exports, syncs and snapshots. Use it before reporting back.",
  input: () => ({}),
  output: loose({ workspace_id: z.string(), commands: loose({ total: z.number() }) }),
  annotations: READ_ONLY,
  run: async (id, _args, ctx) => {
    const summary = await ctx.pyro.workspaces.summary(id);
    return json(summary, formatSummary(summary));
  },
});
