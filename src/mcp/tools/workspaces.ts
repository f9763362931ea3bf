/** Workspace lifecycle and review tools: create, list, status, update, stop, start, fork, delete, reset, diff, summary, logs. */
import * as z from "zod";
import { BOUNDS, DEFAULTS, NETWORK_POLICIES, formatSummary } from "../../index.js";
import { clipForModel, describeWorkspace, workspaceOutput, workspaceReport } from "../report.js";
import {
  CHANGES_WORKSPACE,
  DESTRUCTIVE,
  READ_ONLY,
  defineTool,
  defineWorkspaceTool,
  json,
  loose,
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
  return `${purpose} ${seed} Returns the workspace (id, state, origin_kind, origin_ref); use its id with the other workspace tools. The baseline for diff and reset is taken now. Environment defaults to ${ctx.environment}.`;
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
    name: z.string().optional().describe("a unique, memorable name to use instead of the id"),
    labels: z.record(z.string(), z.string()).optional().describe("key/value labels"),
    environment: z.string().optional().describe(`environment (default ${ctx.environment})`),
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
    name: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    clear_labels: z.array(z.string()).optional(),
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

export const workspaceLogs = defineWorkspaceTool({
  name: "workspace_logs",
  title: "Command journal",
  description: () =>
    "The commands run in a workspace since its last reset, in order, with exit codes and (bounded) output.",
  input: () => ({}),
  output: loose({ workspace_id: z.string(), entries: z.array(loose({ sequence: z.number() })) }),
  annotations: READ_ONLY,
  run: async (id, _args, ctx) => {
    const logs = ctx.pyro.workspaces.logs(id);
    const text = logs.entries
      .map(
        (e) =>
          `#${e.sequence} exit ${e.exit_code}: ${e.command}\n${clipForModel(e.stdout, "stdout", "read it again by rerunning with output to a file", 2000).text}`,
      )
      .join("\n");
    return json(logs, text || "no commands yet");
  },
});

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
  input: () => ({ name: z.string().optional() }),
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
