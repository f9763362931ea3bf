/**
 * Operations the guest agent serves, with their arguments and results.
 * Shared by the host client and the agent so both sides agree on shapes.
 */

export const PROTOCOL_VERSION = 1;

export interface HelloResult {
  protocol_version: number;
  agent_version: string;
  kernel_release: string;
  /** Seconds since the guest kernel booted, as the guest sees it. */
  uptime_seconds: number;
}

export interface ExecArgs {
  /** argv; argv[0] is looked up on PATH. */
  argv: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Kill the whole process group after this long. */
  timeout_ms?: number;
  /** Stop forwarding a stream after this many bytes (the process keeps running). */
  max_output_bytes?: number;
  /** When true the host sends stdin as Data frames followed by Eof; otherwise stdin is empty. */
  stdin?: boolean;
  secret_env?: SecretEnv;
}

/** Environment variables set from the guest's secrets: variable name → secret name. */
export type SecretEnv = Record<string, string>;

export interface ExecResult {
  exit_code: number;
  /** Set when the process died of a signal. */
  signal: string | null;
  timed_out: boolean;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  /** Guest-side wall time of the command. */
  duration_ms: number;
}

/**
 * Ops that take a path also take an optional `scope`: the path must then lie
 * inside it after symlinks are resolved (the agent checks, in the guest).
 */
export interface Scoped {
  scope?: string;
}

export interface ReadFileArgs extends Scoped {
  path: string;
  max_bytes?: number;
}

export interface ReadFileResult {
  size: number;
  truncated: boolean;
  /** Permission bits of the file. */
  mode?: number;
}

export interface WriteFileArgs extends Scoped {
  path: string;
  mode?: number;
  /** Create missing parent directories. */
  parents?: boolean;
}

export interface WriteFileResult {
  bytes_written: number;
}

export interface TarArgs extends Scoped {
  /** Directory (or, for tar_out, file) to pack from; directory to unpack into (tar_in). */
  path: string;
}

export interface TarResult {
  bytes: number;
  /** tar_out: what `path` was. A file is packed as its base name. */
  kind?: "file" | "directory";
}

export interface ListDirArgs extends Scoped {
  path: string;
  recursive?: boolean;
  max_entries?: number;
}

/** One entry, streamed as a JSON line on stdout; paths are relative to the listed directory. */
export interface DirEntry {
  path: string;
  type: "file" | "directory" | "symlink" | "other";
  size: number;
  mode: number;
  link_target?: string;
}

export interface ListDirResult {
  count: number;
  truncated: boolean;
}

export interface RefreshArgs {
  /** Host wall clock, ms since the epoch. */
  time_ms?: number;
  /** Random bytes (base64) to mix into the guest's entropy pool. */
  entropy?: string;
  hostname?: string;
}

export interface RemoveArgs extends Scoped {
  path: string;
}

/** How the agent decides a service is ready (contract §4 "Services"). */
export type ServiceReadiness =
  | { kind: "file"; path: string }
  | { kind: "tcp"; port: number }
  | { kind: "http"; url: string }
  | { kind: "command"; command: string };

/** A URL an HTTP readiness check can fetch (both sides check it: host for the user, agent for itself). */
export function isHttpUrl(url: string): boolean {
  try {
    const { protocol } = new URL(url);
    return protocol === "http:" || protocol === "https:";
  } catch {
    return false;
  }
}

export type ServiceState = "starting" | "running" | "ready" | "exited" | "failed" | "stopped";

/** The states of a service whose process still runs. */
export const LIVE_SERVICE_STATES: readonly ServiceState[] = ["starting", "running", "ready"];

export function serviceIsLive(service: { state: ServiceState }): boolean {
  return LIVE_SERVICE_STATES.includes(service.state);
}

export interface ServiceStartArgs {
  name: string;
  argv: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Without one, the service is "running" as soon as it has started. */
  readiness?: ServiceReadiness | null;
  ready_timeout_ms?: number;
  ready_interval_ms?: number;
  /** Guest ports the host publishes for it: the agent warns when one is bound to loopback only. */
  published_guest_ports?: number[];
  secret_env?: SecretEnv;
}

/** A service as the agent sees it. */
export interface ServiceInfo {
  name: string;
  state: ServiceState;
  command: string[];
  cwd: string;
  pid: number | null;
  readiness: ServiceReadiness | null;
  started_at: string;
  ready_at: string | null;
  ended_at: string | null;
  exit_code: number | null;
  signal: string | null;
  /** Why it ended: "stopped on request", "exited before it was ready", "not ready after 30 s", … */
  stop_reason: string | null;
  /** Bytes the service has written to its log, and how many of them rotation has dropped. */
  log_bytes: number;
  log_dropped_bytes: number;
}

export interface ServiceLogsArgs {
  name: string;
  /** The last N lines (default 100); ignored with `all`. */
  tail_lines?: number;
  /** Everything the log still holds. */
  all?: boolean;
}

/** The workspace's secrets, materialized under /run/pyro-secrets (replacing any there). */
export interface SecretsSetArgs {
  /** NAME → the value's UTF-8 bytes in base64. */
  secrets: Record<string, string>;
}

/** "exited": the shell's process ended by itself; its output can still be read. */
export type ShellState = "running" | "exited";

export interface ShellOpenArgs {
  /** Chosen by the host (sh_…), so host and guest name it alike. */
  id: string;
  cwd?: string;
  cols?: number;
  rows?: number;
  env?: Record<string, string>;
  secret_env?: SecretEnv;
}

/** A shell as the agent sees it. */
export interface ShellInfo {
  id: string;
  state: ShellState;
  pid: number | null;
  cwd: string;
  cols: number;
  rows: number;
  started_at: string;
  ended_at: string | null;
  exit_code: number | null;
  signal: string | null;
  /** Cursor after the last byte of output so far. */
  end_cursor: number;
}

export interface ShellReadArgs {
  id: string;
  /** Byte offset in the shell's output to read from (default 0). */
  cursor?: number;
  max_chars?: number;
  /** Render what a person would see instead of the raw bytes. */
  plain?: boolean;
  /** Wait until the shell has been quiet this long (bounded by the agent's cap). */
  wait_for_idle_ms?: number;
}

/** A read's text is streamed on stdout; this is the rest. */
export interface ShellReadResult {
  /** Where the read started (later than asked when older output was dropped). */
  cursor: number;
  next_cursor: number;
  /** Bytes between the asked cursor and the oldest output the ring still holds. */
  dropped_bytes: number;
  /** Raw: more output waits past next_cursor. Plain: the text was cut to max_chars (its start). */
  truncated: boolean;
  /** The wait for idle ended because the shell was quiet (false: the cap was reached first). */
  idle: boolean;
  /** Plain reads: "alternate" when a full-screen program owns the screen (the text is that screen). */
  screen: "normal" | "alternate" | null;
  shell: ShellInfo;
}

export type ShellSignal = "INT" | "TERM" | "HUP" | "KILL";
export const SHELL_SIGNALS: readonly ShellSignal[] = ["INT", "TERM", "HUP", "KILL"];

export interface OpMap {
  hello: { args: Record<string, never>; result: HelloResult };
  exec: { args: ExecArgs; result: ExecResult };
  read_file: { args: ReadFileArgs; result: ReadFileResult };
  write_file: { args: WriteFileArgs; result: WriteFileResult };
  tar_out: { args: TarArgs; result: TarResult };
  tar_in: { args: TarArgs; result: TarResult };
  sync: { args: Record<string, never>; result: Record<string, never> };
  list_dir: { args: ListDirArgs; result: ListDirResult };
  remove: { args: RemoveArgs; result: { removed: boolean } };
  refresh: { args: RefreshArgs; result: { clock_skew_ms: number } };
  /** Answers once the service is ready, or failed (with the last lines of its log). */
  service_start: {
    args: ServiceStartArgs;
    result: ServiceInfo & { log_tail: string; warnings: string[] };
  };
  service_list: { args: Record<string, never>; result: { services: ServiceInfo[] } };
  service_status: { args: { name: string }; result: ServiceInfo };
  /** The log text is streamed on stdout. */
  service_logs: { args: ServiceLogsArgs; result: { bytes: number; truncated: boolean } };
  service_stop: { args: { name: string }; result: ServiceInfo };
  secrets_set: { args: SecretsSetArgs; result: { count: number } };
  shell_open: { args: ShellOpenArgs; result: ShellInfo };
  shell_read: { args: ShellReadArgs; result: ShellReadResult };
  shell_write: { args: { id: string; input: string }; result: { bytes: number; shell: ShellInfo } };
  /** Signals the shell's foreground process group (the shell itself when nothing runs). */
  shell_signal: {
    args: { id: string; signal: ShellSignal };
    result: { process_group: number; shell: ShellInfo };
  };
  /** Hangs the shell up (SIGKILL to what is left after 2 s) and forgets it. */
  shell_close: { args: { id: string }; result: ShellInfo };
  shell_list: { args: Record<string, never>; result: { shells: ShellInfo[] } };
}

/**
 * Ops a supervisor answers itself; the agent never sees them. `pyro.claim`
 * is served by a standby supervisor only: it takes the named workspace over.
 */
export interface SupervisorOpMap {
  "pyro.stop": { args: Record<string, never>; result: { stopped: true } };
  /**
   * Pause the VM, save its memory to `memory` and copy its disk to `disk`
   * (absolute paths). Given `delta`, it may save device state alone to
   * `memory` and the changed pages to `delta`, over RAM file `base` (vm/fork-copy.ts).
   */
  "pyro.fork": {
    args: { memory: string; disk: string; delta?: string };
    result: {
      memory: string;
      disk: string;
      delta?: { file: string; base: string; pages: number };
    };
  };
  "pyro.claim": { args: { workspace_id: string }; result: { claimed: true } };
  /**
   * Replace the VM in place: the old one goes, a new one comes up on a fresh
   * disk (warm when it can) and this supervisor serves it. A reset without a standby.
   */
  "pyro.reset": { args: Record<string, never>; result: { reset: true } };
  /** Forward the host's 127.0.0.1:host_port to guest_port (a published port), or stop. */
  "pyro.publish": {
    args: { host_port: number; guest_port: number; service: string };
    result: { published: true };
  };
  "pyro.unpublish": { args: { host_port: number }; result: { unpublished: true } };
}

export type OpName = keyof OpMap | keyof SupervisorOpMap;
export type OpArgs<K extends OpName> = (OpMap & SupervisorOpMap)[K]["args"];
export type OpResult<K extends OpName> = (OpMap & SupervisorOpMap)[K]["result"];

export interface RequestMessage {
  op: string;
  args: Record<string, unknown>;
}

export type ResponseMessage =
  | { ok: true; result: Record<string, unknown> }
  | { ok: false; error: { code: string; message: string } };

export interface ReadyEvent {
  type: "ready";
  agent_version: string;
}
