/**
 * Services of a workspace (contract §4): start one (publishing its ports
 * first, so nothing half-starts), list, status, logs, stop. The guest agent
 * supervises the processes and decides readiness; the host keeps the
 * published ports and its last view of each service in the record, and
 * review events for the summary.
 */
import { ErrorCodes, PyroError } from "../errors.js";
import { prepareCommand } from "../protocol/command.js";
import type { AgentClient } from "../protocol/client.js";
import {
  isHttpUrl,
  serviceIsLive,
  type ServiceInfo,
  type ServiceReadiness,
} from "../protocol/messages.js";
import type { WorkspaceRecord } from "../records/store.js";
import { BOUNDS, DEFAULTS, OUTPUT_LIMITS } from "../limits.js";
import { WORKSPACE_ROOT, type WorkspaceContext } from "./context.js";
import type { WorkspaceService } from "./payloads.js";
import { parsePublish, publishPorts, requirePublishing, sameRun, unpublishPorts } from "./ports.js";
import { withLock } from "../util/lock.js";
import { secretEnvFor, type SecretEnvSpec } from "./secrets.js";

export interface ServiceStartOptions {
  /** A shell command line (run with sh -lc), or an argv. */
  command: string | string[];
  /** Working directory in the guest (default /workspace). */
  cwd?: string;
  /** At most one readiness check; without one the service counts as running once started. */
  readyFile?: string;
  readyTcp?: number;
  readyHttp?: string;
  readyCommand?: string;
  /** Give up (and kill it) when not ready after this long (default 30). */
  readyTimeoutSeconds?: number;
  /** Between readiness checks (default 500). */
  readyIntervalMs?: number;
  /** "[HOST_PORT:]GUEST_PORT" to forward from the host's 127.0.0.1 (egress+published-ports). */
  publish?: (string | number)[];
  env?: Record<string, string>;
  /** Secrets the service gets as environment variables ("NAME" or "NAME=VAR", or VAR → NAME). */
  secretEnv?: SecretEnvSpec;
}

export interface ServiceLogs {
  workspace_id: string;
  name: string;
  text: string;
  bytes: number;
  /** Older output was dropped (rotation) or left out (tail). */
  truncated: boolean;
}

/** Start `name` and wait until it is ready; a service that fails is an error with its log tail. */
export async function startService(
  ctx: WorkspaceContext,
  idOrName: string,
  name: string,
  options: ServiceStartOptions,
): Promise<WorkspaceService> {
  const record = ctx.store.resolve(idOrName);
  const readiness = readinessOf(options);
  const timeoutSeconds = options.readyTimeoutSeconds ?? DEFAULTS.serviceReadyTimeoutSeconds;
  const maxTimeout = BOUNDS.serviceReadyTimeoutSeconds.max;
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0 || timeoutSeconds > maxTimeout) {
    throw new PyroError(
      ErrorCodes.UsageError,
      `the readiness timeout must be a positive number of seconds up to ${maxTimeout}, got ${timeoutSeconds}`,
    );
  }
  const intervalMs = options.readyIntervalMs ?? DEFAULTS.serviceReadyIntervalMs;
  const minInterval = BOUNDS.serviceReadyIntervalMs.min;
  if (!Number.isFinite(intervalMs) || intervalMs < minInterval) {
    throw new PyroError(
      ErrorCodes.UsageError,
      `the readiness interval must be at least ${minInterval} ms, got ${intervalMs}`,
    );
  }
  const requests = (options.publish ?? []).map(parsePublish);
  if (requests.length > 0) requirePublishing(record);
  const { argv } = prepareCommand(options.command, undefined);
  const secretEnv = secretEnvFor(record, options.secretEnv);

  // One start or stop of a workspace's services at a time: a name is checked, its ports
  // published and its process started as one step.
  return withServiceLock(ctx, record.id, () =>
    ctx.withAgent(record, async (agent) => {
      const previous = await existing(agent, record, name);
      // Ports of an earlier run that ended on its own are not this run's.
      if (previous) await unpublishPorts(ctx, agent, record.id, name);
      const published = await publishPorts(ctx, agent, record, name, requests);
      let info: ServiceInfo & { log_tail: string; warnings: string[] };
      try {
        info = await agent.request("service_start", {
          name,
          argv,
          cwd: options.cwd ?? WORKSPACE_ROOT,
          env: options.env ?? {},
          readiness,
          ready_timeout_ms: Math.round(timeoutSeconds * 1000),
          ready_interval_ms: intervalMs,
          published_guest_ports: requests.map((r) => r.guestPort),
          ...(secretEnv ? { secret_env: secretEnv } : {}),
        });
      } catch (error) {
        await unpublishPorts(ctx, agent, record.id, name, published).catch(() => {});
        throw error;
      }
      const { log_tail: logTail, warnings, ...service } = info;
      if (service.state === "failed") await unpublishPorts(ctx, agent, record.id, name, published);
      await remember(ctx, record, service);
      ctx.recordEvent(record.id, {
        kind: "service_start",
        name,
        command: service.command,
        state: service.state,
        published_ports: published.map((p) => ({
          host_port: p.host_port,
          guest_port: p.guest_port,
        })),
      });
      const label = record.name ?? record.id;
      if (service.state === "failed") {
        throw new PyroError(
          ErrorCodes.ServiceFailed,
          `service ${name} failed: ${service.stop_reason ?? "unknown reason"}` +
            (logTail.trim()
              ? `\nlast lines of its log:\n${logTail.trimEnd()}`
              : "\n(its log is empty)"),
          {
            fix: { kind: "read_service_logs", workspace: label, service: name },
            details: {
              service: { ...service, workspace_id: record.id, published_ports: [], warnings: [] },
            },
          },
        );
      }
      await ctx.touch(record.id);
      return { ...service, workspace_id: record.id, published_ports: published, warnings };
    }),
  );
}

export async function listServices(
  ctx: WorkspaceContext,
  idOrName: string,
): Promise<{ workspace_id: string; services: WorkspaceService[] }> {
  const record = ctx.store.resolve(idOrName);
  return ctx.withAgent(record, async (agent) => {
    const { services } = await agent.request("service_list", {});
    const shown: WorkspaceService[] = [];
    for (const service of services) shown.push(await observed(ctx, agent, record, service));
    return { workspace_id: record.id, services: shown };
  });
}

export async function serviceStatus(
  ctx: WorkspaceContext,
  idOrName: string,
  name: string,
): Promise<WorkspaceService> {
  const record = ctx.store.resolve(idOrName);
  return ctx.withAgent(record, async (agent) => {
    const service = await agent.request("service_status", { name }).catch((error: unknown) => {
      throw withServiceFix(error, record);
    });
    return observed(ctx, agent, record, service);
  });
}

export async function serviceLogs(
  ctx: WorkspaceContext,
  idOrName: string,
  name: string,
  options: { tailLines?: number; all?: boolean } = {},
): Promise<ServiceLogs> {
  const record = ctx.store.resolve(idOrName);
  if (
    options.tailLines !== undefined &&
    (!Number.isInteger(options.tailLines) || options.tailLines < 0)
  ) {
    throw new PyroError(
      ErrorCodes.UsageError,
      `--tail-lines must be a whole number, got ${options.tailLines}`,
    );
  }
  return ctx.withAgent(record, async (agent) => {
    const chunks: Buffer[] = [];
    let held = 0;
    const result = await agent
      .request(
        "service_logs",
        {
          name,
          ...(options.all ? { all: true } : {}),
          ...(options.tailLines !== undefined ? { tail_lines: options.tailLines } : {}),
        },
        {
          onData: (_stream, bytes) => {
            // The guest is untrusted: keep no more than a service log can hold.
            if (held + bytes.length > OUTPUT_LIMITS.serviceLogBytes) return;
            held += bytes.length;
            chunks.push(bytes);
          },
        },
      )
      .catch((error: unknown) => {
        throw withServiceFix(error, record);
      });
    const text = Buffer.concat(chunks);
    return {
      workspace_id: record.id,
      name,
      text: text.toString("utf8"),
      bytes: text.length,
      truncated: result.truncated === true || text.length < Number(result.bytes),
    };
  });
}

/** Stop `name` (SIGTERM to its process group, SIGKILL after 5 s) and unpublish its ports. */
export async function stopService(
  ctx: WorkspaceContext,
  idOrName: string,
  name: string,
): Promise<WorkspaceService> {
  const record = ctx.store.resolve(idOrName);
  return withServiceLock(ctx, record.id, () =>
    ctx.withAgent(record, async (agent) => {
      const service = await agent.request("service_stop", { name }).catch((error: unknown) => {
        throw withServiceFix(error, record);
      });
      await unpublishPorts(ctx, agent, record.id, name);
      await remember(ctx, record, service);
      ctx.recordEvent(record.id, {
        kind: "service_stop",
        name,
        state: service.state,
        stop_reason: service.stop_reason,
      });
      await ctx.touch(record.id);
      return { ...service, workspace_id: record.id, published_ports: [], warnings: [] };
    }),
  );
}

/**
 * A service as the guest reports it now: one that ended on its own since
 * the host last looked loses its published ports.
 */
async function observed(
  ctx: WorkspaceContext,
  agent: AgentClient,
  record: WorkspaceRecord,
  service: ServiceInfo,
): Promise<WorkspaceService> {
  if (!serviceIsLive(service)) await unpublishPorts(ctx, agent, record.id, service.name);
  await remember(ctx, record, service);
  const ports = (ctx.store.readRaw(record.id)?.published_ports ?? []).filter(
    (p) => p.service === service.name,
  );
  return { ...service, workspace_id: record.id, published_ports: ports, warnings: [] };
}

/** Keep the host's view of a service, unless the VM it ran in is gone since `record` was read. */
async function remember(
  ctx: WorkspaceContext,
  record: WorkspaceRecord,
  service: ServiceInfo,
): Promise<void> {
  await ctx.store.update(record.id, (r) => {
    if (!sameRun(r, record)) return;
    const others = (r.services ?? []).filter((s) => s.name !== service.name);
    r.services = [
      ...others,
      {
        name: service.name,
        state: service.state,
        exit_code: service.exit_code,
        stop_reason: service.stop_reason,
        ended_at: service.ended_at,
      },
    ];
  });
}

/** The service of that name that ran before, if any; one still running is a conflict. */
async function existing(
  agent: AgentClient,
  record: WorkspaceRecord,
  name: string,
): Promise<ServiceInfo | undefined> {
  const { services } = await agent.request("service_list", {});
  const found = services.find((s) => s.name === name);
  if (found && serviceIsLive(found)) {
    throw new PyroError(
      ErrorCodes.Conflict,
      `service ${name} of workspace ${record.name ?? record.id} is already ${found.state}: stop it first, or use another name`,
    );
  }
  return found;
}

function withServiceLock<T>(ctx: WorkspaceContext, id: string, fn: () => Promise<T>): Promise<T> {
  return withLock(ctx.store.file(id, "services.lock"), fn, {
    // A start holds it while its service gets ready.
    timeoutMs: (BOUNDS.serviceReadyTimeoutSeconds.max + 60) * 1000,
    what: `the services lock of ${id}`,
  });
}

/** An unknown service name: say which services the workspace has. */
function withServiceFix(error: unknown, record: WorkspaceRecord): unknown {
  if (!(error instanceof PyroError) || error.code !== ErrorCodes.ServiceNotFound) return error;
  return new PyroError(error.code, error.message, {
    fix: {
      kind: "find_service",
      workspace: record.name ?? record.id,
      known: (record.services ?? []).map((s) => s.name),
    },
  });
}

function readinessOf(options: ServiceStartOptions): ServiceReadiness | null {
  const given: ServiceReadiness[] = [];
  if (options.readyFile !== undefined) given.push({ kind: "file", path: options.readyFile });
  if (options.readyTcp !== undefined) {
    if (!Number.isInteger(options.readyTcp) || options.readyTcp < 1 || options.readyTcp > 65535)
      throw new PyroError(
        ErrorCodes.UsageError,
        `--ready-tcp must be a port from 1 to 65535, got ${options.readyTcp}`,
      );
    given.push({ kind: "tcp", port: options.readyTcp });
  }
  if (options.readyHttp !== undefined) {
    if (!isHttpUrl(options.readyHttp))
      throw new PyroError(
        ErrorCodes.UsageError,
        `--ready-http must be an http:// or https:// URL, got "${options.readyHttp}"`,
      );
    given.push({ kind: "http", url: options.readyHttp });
  }
  if (options.readyCommand !== undefined)
    given.push({ kind: "command", command: options.readyCommand });
  if (given.length > 1) {
    throw new PyroError(
      ErrorCodes.UsageError,
      "give at most one readiness check (--ready-file, --ready-tcp, --ready-http or --ready-command)",
    );
  }
  return given[0] ?? null;
}
