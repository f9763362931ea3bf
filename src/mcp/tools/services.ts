/** Services: long-running processes in a workspace with readiness checks and published ports. */
import * as z from "zod";
import { BOUNDS, DEFAULTS, type WorkspaceService } from "../../index.js";
import { clipForModel } from "../report.js";
import {
  CHANGES_WORKSPACE,
  READ_ONLY,
  defineWorkspaceTool,
  json,
  loose,
  secretEnvParam,
} from "../tool.js";

const serviceName = z
  .string()
  .min(1)
  .describe("the service's name (letters, digits, '.', '_' or '-')");

const serviceOutput = loose({
  workspace_id: z.string(),
  name: z.string(),
  state: z.string(),
  exit_code: z.number().nullable(),
  stop_reason: z.string().nullable(),
  published_ports: z.array(loose({ host_port: z.number(), guest_port: z.number() })),
});

function describeService(s: WorkspaceService): string {
  const ports = s.published_ports
    .map((p) => `http://127.0.0.1:${p.host_port} on the host → guest port ${p.guest_port}`)
    .join(", ");
  const ended = s.ended_at ? ` (${s.stop_reason ?? "ended"})` : "";
  return `service ${s.name}: ${s.state}${ended}${ports ? `; published: ${ports}` : ""}`;
}

export const serviceStart = defineWorkspaceTool({
  name: "service_start",
  title: "Start a service",
  description: (ctx) =>
    `Start a long-running process (a dev server, a database, a worker) in the workspace under a name, and wait until its readiness check passes (at most one of ready_http, ready_tcp, ready_file, ready_command; default timeout ${DEFAULTS.serviceReadyTimeoutSeconds} s). It runs as \`sh -lc COMMAND\` (dash, a login shell) as root in cwd (default /workspace), in its own process group, with its output in a log outside /workspace (service_logs). If it exits before it is ready, or is not ready in time, the call fails with the last lines of its log.${ctx.surface.features.has("network") ? " publish forwards a port of this host's 127.0.0.1 to a guest port while the service runs (the workspace needs network_policy egress+published-ports); the guest program must listen on 0.0.0.0." : ""}`,
  input: () => ({
    name: serviceName,
    command: z
      .string()
      .min(1)
      .describe(
        "the shell command line that runs the service in the foreground (with `sh -lc`), e.g. `python3 -m http.server 8000`",
      ),
    cwd: z.string().optional().describe("working directory in the guest (default /workspace)"),
    ready_http: z
      .string()
      .optional()
      .describe("ready once this URL, fetched inside the guest, answers 2xx or 3xx"),
    ready_tcp: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe("ready once 127.0.0.1:PORT accepts connections inside the guest"),
    ready_file: z
      .string()
      .optional()
      .describe(
        "ready once this file (an absolute guest path) appears, or is modified when it existed at start",
      ),
    ready_command: z
      .string()
      .optional()
      .describe(
        "ready once this command exits 0 (run with `sh -c` in the guest, with the service's environment; each try at most 10 s)",
      ),
    ready_timeout_seconds: z
      .number()
      .positive()
      .max(BOUNDS.serviceReadyTimeoutSeconds.max)
      .optional()
      .describe(
        `fail (and kill it) if it is not ready after this many seconds (default ${DEFAULTS.serviceReadyTimeoutSeconds}); chat hosts may give up on a tool call after about 60 s, so stay well below that`,
      ),
    ready_interval_ms: z
      .number()
      .int()
      .min(BOUNDS.serviceReadyIntervalMs.min)
      .optional()
      .describe(
        `milliseconds between two readiness checks (default ${DEFAULTS.serviceReadyIntervalMs}, at least ${BOUNDS.serviceReadyIntervalMs.min})`,
      ),
    publish: z
      .array(z.union([z.string(), z.number().int()]))
      .optional()
      .describe(
        'guest ports to publish on the host\'s 127.0.0.1: "8000" (a free host port is chosen) or "18000:8000"',
      ),
    secret_env: secretEnvParam,
  }),
  gated: { publish: "network", secret_env: "secrets" },
  output: serviceOutput,
  annotations: CHANGES_WORKSPACE,
  run: async (id, args, ctx) => {
    const started = await ctx.pyro.workspaces.startService(id, args.name, {
      command: args.command,
      cwd: args.cwd,
      readyHttp: args.ready_http,
      readyTcp: args.ready_tcp,
      readyFile: args.ready_file,
      readyCommand: args.ready_command,
      readyTimeoutSeconds: args.ready_timeout_seconds,
      readyIntervalMs: args.ready_interval_ms,
      publish: args.publish,
      secretEnv: args.secret_env,
    });
    const warnings = started.warnings.map((w) => `\nwarning: ${w}`).join("");
    return json(started, `${describeService(started)}${warnings}`);
  },
});

export const serviceList = defineWorkspaceTool({
  name: "service_list",
  title: "List services",
  description: () =>
    "The workspace's services with their states (starting, running, ready, exited, failed, stopped), exit codes and published ports.",
  input: () => ({}),
  output: loose({ workspace_id: z.string(), services: z.array(serviceOutput) }),
  annotations: READ_ONLY,
  run: async (id, _args, ctx) => {
    const list = await ctx.pyro.workspaces.listServices(id);
    return json(
      list,
      list.services.length ? list.services.map(describeService).join("\n") : "no services",
    );
  },
});

export const serviceStatus = defineWorkspaceTool({
  name: "service_status",
  title: "Service status",
  description: () => "One service's state, pid, exit code, why it ended, and its published ports.",
  input: () => ({ name: serviceName }),
  output: serviceOutput,
  annotations: READ_ONLY,
  run: async (id, args, ctx) => {
    const status = await ctx.pyro.workspaces.serviceStatus(id, args.name);
    return json(status, describeService(status));
  },
});

export const serviceLogs = defineWorkspaceTool({
  name: "service_logs",
  title: "Read a service's log",
  description: () =>
    "A service's output (stdout and stderr interleaved): the last tail_lines lines (default 100), or all the log still holds (its last 2 MiB).",
  input: () => ({
    name: serviceName,
    tail_lines: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe("how many lines from the end of the log (default 100)"),
    all: z
      .boolean()
      .optional()
      .describe("everything the log still holds (its last 2 MiB) instead of tail_lines"),
  }),
  output: loose({
    workspace_id: z.string(),
    name: z.string(),
    text: z.string(),
    truncated: z.boolean(),
  }),
  annotations: READ_ONLY,
  run: async (id, args, ctx) => {
    const logs = await ctx.pyro.workspaces.serviceLogs(id, args.name, {
      tailLines: args.tail_lines,
      all: args.all,
    });
    const shown = clipForModel(logs.text, "the log", "ask for fewer lines with tail_lines");
    const payload = { ...logs, text: shown.text, truncated: logs.truncated || shown.cut };
    return json(payload, shown.text || "(the log is empty)", [
      shown.note,
      logs.truncated &&
        !shown.cut &&
        (args.all
          ? "older output was dropped: the log keeps only its last 2 MiB"
          : "this is the log's end: ask for more with a larger tail_lines, or all: true"),
    ]);
  },
});

export const serviceStop = defineWorkspaceTool({
  name: "service_stop",
  title: "Stop a service",
  description: () =>
    "Stop a service: SIGTERM to its process group, SIGKILL after 5 s; its published ports go away.",
  input: () => ({ name: serviceName }),
  output: serviceOutput,
  annotations: { ...CHANGES_WORKSPACE, idempotentHint: true },
  run: async (id, args, ctx) => {
    const stopped = await ctx.pyro.workspaces.stopService(id, args.name);
    return json(stopped, describeService(stopped));
  },
});
