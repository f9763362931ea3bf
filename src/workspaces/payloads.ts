/**
 * The payloads workspace operations return (contract §4): one JSON object
 * with snake_case keys, the same from the SDK, `--json` and MCP.
 */
import type { CommandOutputFields } from "../protocol/command.js";
import {
  kindOf,
  type OriginKind,
  type PublishedPort,
  type RecordKind,
  type ServiceRecord,
  type ShellRecord,
  type WorkspaceRecord,
  type WorkspaceState,
} from "../records/store.js";
import { GUEST_NETWORK, PROXY_URL } from "../network/addresses.js";
import { hasNetwork, type NetworkPolicy } from "../network/policy.js";
import type { ServiceInfo } from "../protocol/messages.js";

export interface Workspace {
  id: string;
  /** "workspace" (ws_…), or "vm" (vm_…) for a one-shot VM of MCP vm_create. */
  kind: RecordKind;
  name: string | null;
  labels: Record<string, string>;
  environment: string;
  state: WorkspaceState;
  failure_reason: string | null;
  vcpu_count: number;
  mem_mib: number;
  network_policy: NetworkPolicy;
  network: WorkspaceNetwork;
  /** Services as last seen (name, state, how they ended). */
  services: ServiceRecord[];
  /** Shells opened since create (live, exited, closed or ended with the VM), the latest last. */
  shells: ShellRecord[];
  /** Names of the workspace's secrets (files under /run/pyro-secrets in the guest); never their values. */
  secrets: string[];
  created_at: string;
  last_activity_at: string;
  expires_at: string | null;
  origin_kind: OriginKind;
  origin_ref: string | null;
  seed_files: number;
  seed_bytes: number;
  command_count: number;
  boot_ms: number | null;
  accel: "kvm" | "tcg" | null;
  /** "warm" when the VM was restored from a warm image, "cold" when it booted. */
  boot_kind: "warm" | "cold" | null;
  /** Why a cold boot when a warm one was wanted, or "took over a standby VM". */
  boot_note: string | null;
  reset_count: number;
}

/** What a workspace's guest can reach, and what reaches it (vm_network_info). */
export interface WorkspaceNetwork {
  policy: NetworkPolicy;
  /** The guest's address; null without a network device. */
  guest_address: string | null;
  /** HTTP(S) proxy every guest process is given (http_proxy, https_proxy, …). */
  egress_proxy: string | null;
  /** Where allowed host ports appear in the guest (also named host.pyro.internal). */
  host_address: string | null;
  allowed_host_ports: number[];
  /** Host 127.0.0.1 ports forwarded to guest ports, each for a service. */
  published_ports: PublishedPort[];
}

export function networkOf(record: WorkspaceRecord): WorkspaceNetwork {
  const on = hasNetwork(record.network_policy);
  return {
    policy: record.network_policy,
    guest_address: on ? GUEST_NETWORK.guestAddress : null,
    egress_proxy: on ? PROXY_URL : null,
    host_address: on ? GUEST_NETWORK.hostAddress : null,
    allowed_host_ports: record.allow_host_ports ?? [],
    published_ports: record.published_ports ?? [],
  };
}

/** A service (contract §4), with the host ports published for it. */
export interface WorkspaceService extends ServiceInfo {
  workspace_id: string;
  published_ports: PublishedPort[];
  /** Things worth knowing at start, e.g. a published guest port bound to loopback only. */
  warnings: string[];
}

/** A named snapshot: a saved copy of /workspace that reset can go back to. */
export interface NamedSnapshot {
  name: string;
  created_at: string;
  bytes: number;
  /** false for the baseline. */
  deletable: boolean;
}

export interface WorkspaceExecResult extends CommandOutputFields {
  workspace_id: string;
  sequence: number;
  command: string;
  cwd: string;
  exit_code: number;
  duration_ms: number;
}

export function toWorkspace(record: WorkspaceRecord, commandCount: number): Workspace {
  return {
    id: record.id,
    kind: kindOf(record.id),
    name: record.name,
    labels: record.labels,
    environment: record.environment,
    state: record.state,
    failure_reason: record.failure_reason,
    vcpu_count: record.vcpu_count,
    mem_mib: record.mem_mib,
    network_policy: record.network_policy,
    network: networkOf(record),
    services: record.services ?? [],
    shells: record.shells ?? [],
    secrets: record.secrets ?? [],
    created_at: record.created_at,
    last_activity_at: record.last_activity_at,
    expires_at: record.expires_at,
    origin_kind: record.seed.origin_kind,
    origin_ref: record.seed.origin_ref,
    seed_files: record.seed.files,
    seed_bytes: record.seed.bytes,
    command_count: commandCount,
    boot_ms: record.boot_ms,
    accel: record.accel,
    boot_kind: record.boot_kind ?? null,
    boot_note: record.boot_note ?? null,
    reset_count: record.reset_count ?? 0,
  };
}
