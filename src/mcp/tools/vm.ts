/**
 * One-shot and low-level VM tools (contract §3). A `vm_*` lifecycle tool is
 * the twin of its `workspace_*` tool (a VM is a workspace of kind "vm": its
 * own vm_ ids, no seed, a default TTL, left out of workspace lists):
 * derived from its definition, not copied.
 */
import * as z from "zod";
import { BOUNDS, DEFAULTS } from "../../index.js";
import {
  commandReport,
  commandText,
  environmentBuiltNote,
  workspaceOutput,
  workspaceReport,
} from "../report.js";
import {
  CHANGES_WORKSPACE,
  DESTRUCTIVE,
  READ_ONLY,
  defineTool,
  environmentParam,
  json,
  loose,
  type Tool,
} from "../tool.js";
import { HOW_COMMANDS_RUN, workspaceExec } from "./exec.js";
import {
  resourceParams,
  workspaceDelete,
  workspaceStart,
  workspaceStatus,
  workspaceStop,
} from "./workspaces.js";

export const vmRun = defineTool({
  name: "vm_run",
  title: "Run one command in a fresh VM",
  description: (ctx) =>
    `Boot a fresh, disposable Linux VM (default ${ctx.environment}), run one command, return its exit code and output, and delete the VM. ${HOW_COMMANDS_RUN} Nothing persists: for several steps use a workspace. A non-zero exit code is a normal result. The call lasts the boot plus the command (it has no command_id to poll), and an environment not yet built on this machine is built first, inside the call (minutes: the result then says so).`,
  input: (ctx) => {
    const { vcpu_count, mem_mib } = resourceParams();
    return {
      command: z
        .string()
        .min(1)
        .describe("the shell command line to run (with `sh -lc`, in /workspace, as root)"),
      environment: environmentParam(ctx),
      timeout_seconds: z
        .number()
        .positive()
        .max(BOUNDS.execTimeoutSeconds.max)
        .optional()
        .describe(
          `kill the command (and its process group) after this many seconds (default ${DEFAULTS.execTimeoutSeconds})`,
        ),
      vcpu_count,
      mem_mib,
      network: z
        .boolean()
        .optional()
        .describe(
          "give the VM outbound HTTP(S) through pyro's egress proxy (never the host or private networks)",
        ),
    };
  },
  gated: { network: "network" },
  output: loose({ exit_code: z.number(), stdout: z.string(), stderr: z.string() }),
  annotations: { ...CHANGES_WORKSPACE, idempotentHint: false },
  run: async (args, ctx) => {
    const result = await ctx.pyro.run({
      environment: args.environment ?? ctx.environment,
      command: args.command,
      timeoutSeconds: args.timeout_seconds,
      vcpuCount: args.vcpu_count,
      memMib: args.mem_mib,
      network: args.network,
    });
    const { notes, ...shown } = commandReport(
      result,
      "the VM is gone: to see other parts, run it again with its output filtered (`CMD 2>&1 | tail -n 300`, `| sed -n '1,300p'`, `| grep -n PATTERN`)",
    );
    const head = `exit ${result.exit_code}${result.timed_out ? " (timed out: killed with its process group)" : ""} in ${result.duration_ms} ms (boot ${result.boot_ms} ms)`;
    return json({ ...result, ...shown }, commandText(head, shown), [
      result.timed_out &&
        "it ran out of time and was killed with its process group: give a larger timeout_seconds if it needs longer",
      ...notes,
      environmentBuiltNote(result.environment, result.environment_built),
    ]);
  },
});

export const vmListEnvironments = defineTool({
  name: "vm_list_environments",
  title: "List environments",
  description: () =>
    "List the Linux environments a VM or workspace can use, with whether each is installed (built) on this machine. The default one is marked.",
  input: () => ({}),
  output: loose({ environments: z.array(loose({ name: z.string(), installed: z.boolean() })) }),
  annotations: READ_ONLY,
  run: async (_args, ctx) => {
    const environments = await ctx.pyro.environments.list();
    const missing = environments.filter((e) => !e.installed).map((e) => e.name);
    return json(
      { environments },
      environments
        .map(
          (e) =>
            `${e.name}${e.default ? " (default)" : ""}: ${e.installed ? "installed" : "not installed"} — ${e.description}`,
        )
        .join("\n"),
      [
        missing.length > 0 &&
          `not installed: ${missing.join(", ")}; the first create or run of one builds it inside that call (minutes). \`pyro prepare ENV\` (run by the user) builds it ahead`,
      ],
    );
  },
});

export const vmCreate = defineTool({
  name: "vm_create",
  title: "Create a VM",
  description: (ctx) =>
    `Create and start a bare VM (default ${ctx.environment}) that lives until vm_delete or its TTL (default ${DEFAULTS.vmTtlSeconds} s). Lower level than workspace_create: no seed. Use vm_exec to run commands in it.`,
  input: (ctx) => ({
    environment: environmentParam(ctx),
    ...resourceParams(DEFAULTS.vmTtlSeconds),
  }),
  output: workspaceOutput,
  annotations: CHANGES_WORKSPACE,
  run: async (args, ctx) => {
    const created = await ctx.pyro.workspaces.create({
      environment: args.environment ?? ctx.environment,
      kind: "vm",
      vcpuCount: args.vcpu_count,
      memMib: args.mem_mib,
      ttlSeconds: args.ttl_seconds ?? DEFAULTS.vmTtlSeconds,
    });
    return workspaceReport(created, "created ");
  },
});

export const vmReapExpired = defineTool({
  name: "vm_reap_expired",
  title: "Delete expired VMs",
  description: () =>
    "Delete every VM made by vm_create whose TTL has passed; returns their ids. Workspaces are never touched.",
  input: () => ({}),
  output: loose({ reaped: z.array(z.string()) }),
  annotations: { ...DESTRUCTIVE, idempotentHint: true },
  run: async (_args, ctx) => {
    const reaped = ctx.pyro.workspaces.reapExpired({ kind: "vm" });
    return json({ reaped }, reaped.length ? `deleted ${reaped.join(", ")}` : "nothing expired");
  },
});

const vmId = {
  idParam: "vm_id",
  idDescription: "the VM's id (vm_…), as vm_create gave it",
  kind: "vm" as const,
};

function twin(tool: Tool, spec: { name: Tool["name"]; title: string; description: string }): Tool {
  return tool.twin!({ ...spec, ...vmId });
}

/** The network of a VM or workspace: what its guest can reach, and what reaches it. */
export const vmNetworkInfo = defineTool({
  name: "vm_network_info",
  title: "Network of a VM",
  description: () =>
    "What a VM's (or workspace's) guest can reach and what reaches it: network policy, guest address, egress proxy, allowed host ports, published ports. The one vm_* tool that also takes a workspace's id: there is no workspace twin.",
  input: () => ({
    vm_id: z
      .string()
      .min(1)
      .describe("the VM's id (vm_…), as vm_create gave it, or a workspace's id (ws_…) or name"),
  }),
  output: loose({ workspace_id: z.string(), policy: z.string() }),
  annotations: READ_ONLY,
  run: async (args, ctx) => {
    const info = ctx.pyro.workspaces.network(args.vm_id);
    const lines = [
      `network policy: ${info.policy}`,
      info.guest_address
        ? `guest address ${info.guest_address}; egress proxy ${info.egress_proxy}`
        : "no network device",
      ...(info.allowed_host_ports.length
        ? [`host ports reachable at ${info.host_address}: ${info.allowed_host_ports.join(", ")}`]
        : []),
      ...info.published_ports.map(
        (p) =>
          `published: 127.0.0.1:${p.host_port} on the host → guest port ${p.guest_port} (service ${p.service})`,
      ),
    ];
    return json(info, lines.join("\n"), [
      info.guest_address
        ? "outbound HTTP(S) works only through the egress proxy (set as http_proxy/https_proxy in the guest); the host and private networks are not reachable"
        : "nothing outside the VM is reachable",
    ]);
  },
});

export const vmTwins: Tool[] = [
  twin(workspaceStart, {
    name: "vm_start",
    title: "Start a VM",
    description: "Start a stopped VM (made by vm_create) again on its own disk; files are kept.",
  }),
  twin(workspaceExec, {
    name: "vm_exec",
    title: "Run a command in a VM",
    description: `Run a shell command line in a VM made by vm_create. ${HOW_COMMANDS_RUN} Same behaviour as workspace_exec: give command or command_id (not both); bounded wait with progress, then a command_id to poll for long commands; output cut with a note beyond the model limit.`,
  }),
  twin(workspaceStop, {
    name: "vm_stop",
    title: "Stop a VM",
    description: "Stop a VM made by vm_create, keeping its disk (vm_start boots it again).",
  }),
  twin(workspaceDelete, {
    name: "vm_delete",
    title: "Delete a VM",
    description: "Delete a VM made by vm_create and everything it had. Cannot be undone.",
  }),
  twin(workspaceStatus, {
    name: "vm_status",
    title: "VM status",
    description:
      "State (started, stopped, failed and why), resources and expiry of a VM made by vm_create.",
  }),
];
