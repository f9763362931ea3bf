/**
 * The payloads workspace operations return (contract §4): one JSON object
 * with snake_case keys, the same from the SDK, `--json` and MCP.
 */
import type { CommandOutputFields } from "../protocol/command.js";
import type { OriginKind, WorkspaceRecord, WorkspaceState } from "../records/store.js";

export interface Workspace {
  id: string;
  name: string | null;
  labels: Record<string, string>;
  environment: string;
  state: WorkspaceState;
  failure_reason: string | null;
  vcpu_count: number;
  mem_mib: number;
  network_policy: "off";
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
    name: record.name,
    labels: record.labels,
    environment: record.environment,
    state: record.state,
    failure_reason: record.failure_reason,
    vcpu_count: record.vcpu_count,
    mem_mib: record.mem_mib,
    network_policy: record.network_policy,
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
