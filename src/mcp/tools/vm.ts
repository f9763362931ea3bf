/**
 * One-shot and low-level VM tools (contract §3). A `vm_*` lifecycle tool is
 * the twin of its `workspace_*` tool (a VM is a workspace of kind "vm": its
 * own vm_ ids, no seed, a default TTL, left out of workspace lists):
 * derived from its definition, not copied.
 */
import * as z from "zod";
import { BOUNDS, DEFAULTS } from "../../index.js";
import { commandReport, workspaceOutput, workspaceReport } from "../report.js";
import {
  CHANGES_WORKSPACE,
  DESTRUCTIVE,
  READ_ONLY,
  checkVmId,
  defineTool,
  json,
  loose,
  type Tool,
} from "../tool.js";
import { workspaceExec } from "./exec.js";
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
    `Boot a fresh, disposable Linux VM (default ${ctx.environment}), run one command, return its exit code and output, and delete the VM. Nothing persists: for several steps use a workspace. A non-zero exit code is a normal result.`,
  input: (ctx) => {
    const { vcpu_count, mem_mib } = resourceParams();
    return {
      command: z.string().min(1).describe("shell command line (run with sh -c)"),
      environment: z.string().optional().describe(`environment (default ${ctx.environment})`),
      timeout_seconds: z
        .number()
        .positive()
        .max(BOUNDS.execTimeoutSeconds.max)
        .optional()
        .describe(`default ${DEFAULTS.execTimeoutSeconds}`),
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
    const shown = commandReport(
      result,
      "write the output to a file and print parts of it (head, tail)",
    );
    return json(
      { ...result, ...shown },
      `exit ${result.exit_code}\n${shown.stdout}${shown.stderr ? `\n[stderr]\n${shown.stderr}` : ""}`,
    );
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
});

export const vmCreate = defineTool({
  name: "vm_create",
  title: "Create a VM",
  description: (ctx) =>
    `Create and start a bare VM (default ${ctx.environment}) that lives until vm_delete or its TTL (default ${DEFAULTS.vmTtlSeconds} s). Lower level than workspace_create: no seed. Use vm_exec to run commands in it.`,
  input: (ctx) => ({
    environment: z.string().optional().describe(`default ${ctx.environment}`),
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
    "What a VM's (or workspace's) guest can reach and what reaches it: network policy, guest address, egress proxy, allowed host ports, published ports.",
  input: () => ({ vm_id: z.string().min(1).describe(vmId.idDescription) }),
  output: loose({ workspace_id: z.string(), policy: z.string() }),
  annotations: READ_ONLY,
  run: async (args, ctx) => {
    const info = ctx.pyro.workspaces.network(checkVmId(args.vm_id));
    const lines = [
      `network policy: ${info.policy}`,
      ...(info.guest_address
        ? [
            `guest address ${info.guest_address}; outbound HTTP(S) only through ${info.egress_proxy} (set as http_proxy/https_proxy in the guest); the host and private networks are not reachable`,
          ]
        : ["no network device: nothing outside the VM is reachable"]),
      ...(info.allowed_host_ports.length
        ? [`host ports reachable at ${info.host_address}: ${info.allowed_host_ports.join(", ")}`]
        : []),
      ...info.published_ports.map(
        (p) =>
          `published: 127.0.0.1:${p.host_port} on the host → guest port ${p.guest_port} (service ${p.service})`,
      ),
    ];
    return json(info, lines.join("\n"));
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
    description:
      "Run a shell command in a VM made by vm_create. Same behaviour as workspace_exec (bounded wait, command_id for long commands).",
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
