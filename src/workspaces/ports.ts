/**
 * Published ports (contract §4 "Network"): a host port on 127.0.0.1
 * forwarded into a workspace's guest for one of its services, added and
 * removed while the VM runs. Host ports are handed out under one lock for
 * all workspaces, so two cannot take the same one, and a port another
 * program holds is refused before anything starts.
 */
import net from "node:net";
import path from "node:path";
import { ensurePrivateDir } from "../config/paths.js";
import { ErrorCodes, PyroError } from "../errors.js";
import { allowsPublishing, parsePort } from "../network/policy.js";
import type { AgentClient } from "../protocol/client.js";
import type { PublishedPort, WorkspaceRecord } from "../records/store.js";
import { withLock } from "../util/lock.js";
import type { WorkspaceContext } from "./context.js";
import { networkOf, type WorkspaceNetwork } from "./payloads.js";

/** What a workspace's guest can reach and what reaches it (vm_network_info). */
export function networkInfo(
  ctx: WorkspaceContext,
  idOrName: string,
): {
  workspace_id: string;
  name: string | null;
  state: WorkspaceRecord["state"];
} & WorkspaceNetwork {
  const record = ctx.store.resolve(idOrName);
  return { workspace_id: record.id, name: record.name, state: record.state, ...networkOf(record) };
}

/** A port to publish: the guest's, and the host's when the caller chose one. */
export interface PortRequest {
  hostPort: number | undefined;
  guestPort: number;
}

/** "[HOST_PORT:]GUEST_PORT" (or a bare guest port number). */
export function parsePublish(value: string | number): PortRequest {
  const text = String(value).trim();
  const match = /^(?:(\d+):)?(\d+)$/.exec(text);
  if (!match) {
    throw new PyroError(
      ErrorCodes.UsageError,
      `cannot read --publish "${text}": use GUEST_PORT or HOST_PORT:GUEST_PORT`,
    );
  }
  return {
    hostPort: match[1] === undefined ? undefined : parsePort(match[1], "a host port"),
    guestPort: parsePort(match[2]!, "a guest port"),
  };
}

export function requirePublishing(record: WorkspaceRecord): void {
  if (allowsPublishing(record.network_policy)) return;
  throw new PyroError(
    ErrorCodes.NetworkPolicy,
    `workspace ${record.name ?? record.id} has network policy "${record.network_policy}": publishing ports needs "egress+published-ports"`,
    { fix: { kind: "create_with_network", policy: "egress+published-ports" } },
  );
}

/**
 * Forward each requested port for `service` and record it. All or nothing:
 * a port that cannot be had undoes the ones already forwarded.
 */
export async function publishPorts(
  ctx: WorkspaceContext,
  agent: AgentClient,
  record: WorkspaceRecord,
  service: string,
  requests: PortRequest[],
): Promise<PublishedPort[]> {
  if (requests.length === 0) return [];
  return withPortLock(ctx, async () => {
    const taken = portsInUse(ctx);
    const published: PublishedPort[] = [];
    try {
      for (const request of requests) {
        const hostPort = await chooseHostPort(request.hostPort, taken);
        await agent.request("pyro.publish", {
          host_port: hostPort,
          guest_port: request.guestPort,
          service,
        });
        const port: PublishedPort = {
          host_address: "127.0.0.1",
          host_port: hostPort,
          guest_port: request.guestPort,
          service,
        };
        published.push(port);
        taken.set(hostPort, `service ${service} of workspace ${record.name ?? record.id}`);
      }
    } catch (error) {
      await unforward(agent, published).catch(() => {});
      throw error;
    }
    await ctx.store.update(record.id, (r) => {
      // A stop or reset that came in meanwhile took the VM and its forwards with it.
      if (sameRun(r, record)) r.published_ports = [...(r.published_ports ?? []), ...published];
    });
    return published;
  });
}

/** The record still describes the same running VM as `then` (no stop, reset or restart since). */
export function sameRun(now: WorkspaceRecord, then: WorkspaceRecord): boolean {
  return now.state === "started" && now.supervisor_pid === then.supervisor_pid;
}

/**
 * Stop forwarding the ports of `service` and forget them; `only` limits it
 * to the ports one call published (its own undo).
 */
export async function unpublishPorts(
  ctx: WorkspaceContext,
  agent: AgentClient,
  id: string,
  service: string,
  only?: PublishedPort[],
): Promise<PublishedPort[]> {
  const mine = (p: PublishedPort) =>
    p.service === service && (!only || only.some((o) => o.host_port === p.host_port));
  return withPortLock(ctx, async () => {
    const ports = (ctx.store.readRaw(id)?.published_ports ?? []).filter(mine);
    if (ports.length === 0) return [];
    await unforward(agent, ports);
    await ctx.store.update(id, (r) => {
      r.published_ports = (r.published_ports ?? []).filter((p) => !mine(p));
    });
    return ports;
  });
}

async function unforward(agent: AgentClient, ports: PublishedPort[]): Promise<void> {
  for (const port of ports) await agent.request("pyro.unpublish", { host_port: port.host_port });
}

function withPortLock<T>(ctx: WorkspaceContext, fn: () => Promise<T>): Promise<T> {
  ensurePrivateDir(ctx.paths.locks);
  return withLock(path.join(ctx.paths.locks, "ports.lock"), fn, {
    timeoutMs: 30_000,
    what: "the published-ports lock",
  });
}

/** Host ports pyro has published, and for whom (running workspaces only). */
function portsInUse(ctx: WorkspaceContext): Map<number, string> {
  const taken = new Map<number, string>();
  for (const record of ctx.store.all()) {
    if (record.state !== "started") continue;
    for (const port of record.published_ports ?? []) {
      taken.set(port.host_port, `service ${port.service} of workspace ${record.name ?? record.id}`);
    }
  }
  return taken;
}

async function chooseHostPort(
  wanted: number | undefined,
  taken: Map<number, string>,
): Promise<number> {
  if (wanted !== undefined) {
    const owner = taken.get(wanted);
    if (owner) {
      throw new PyroError(
        ErrorCodes.Conflict,
        `host port ${wanted} is already published for ${owner}`,
        { fix: { kind: "free_host_port", port: wanted } },
      );
    }
    if ((await probePort(wanted)) === undefined) {
      throw new PyroError(
        ErrorCodes.Conflict,
        `host port ${wanted} is in use on this host (127.0.0.1:${wanted} is bound by another program)`,
        { fix: { kind: "free_host_port", port: wanted } },
      );
    }
    return wanted;
  }
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await probePort(0);
    if (port !== undefined && !taken.has(port)) return port;
  }
  throw new PyroError(ErrorCodes.Conflict, "found no free host port to publish on");
}

/** Bind 127.0.0.1:`port` (0: any) for a moment: the port bound, or undefined when it is taken. */
function probePort(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(undefined));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => {
      const bound = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(bound));
    });
  });
}
