/**
 * The one error family of pyro. Every failure a user can see is a PyroError
 * with a stable `code`; where there is a way out it carries a `hint` (advice
 * that reads the same everywhere) or a structured `fix` (an action, which
 * each face words in its own terms: a CLI command for the CLI, a tool and
 * its arguments for MCP). The CLI maps codes to exit codes once (see
 * `exitCodeFor`); the MCP server maps errors to tool errors.
 */
export const ErrorCodes = {
  /** Bad arguments: the caller must change the call. */
  UsageError: "usage_error",
  /** An environment name that is not in the catalog. */
  UnknownEnvironment: "unknown_environment",
  /** Something the host needs (QEMU, mmdebstrap, …) is missing. */
  HostRequirementMissing: "host_requirement_missing",
  /** Building or pulling an environment failed. */
  EnvironmentBuildFailed: "environment_build_failed",
  /** Another process holds a lock we need and did not release it in time. */
  Busy: "busy",
  /** QEMU would not start, or the guest died while booting. */
  VmBootFailed: "vm_boot_failed",
  /** The guest agent did not answer in time. */
  VmBootTimeout: "vm_boot_timeout",
  /** The VM went away underneath an operation. */
  VmDied: "vm_died",
  /** The guest sent something that breaks the protocol; the connection is dropped. */
  GuestProtocolError: "guest_protocol_error",
  /** The guest agent refused or failed an operation. */
  GuestError: "guest_error",
  /** No workspace has this id or name. */
  WorkspaceNotFound: "workspace_not_found",
  /** No snapshot of that name in the workspace. */
  SnapshotNotFound: "snapshot_not_found",
  /** The workspace is not in a state that allows the operation (e.g. exec on a stopped one). */
  WorkspaceState: "workspace_state",
  /** A name is taken, or a path already exists. */
  Conflict: "conflict",
  /** A path outside /workspace, or an unsafe archive entry. */
  PathNotAllowed: "path_not_allowed",
  /** A patch that does not apply; nothing was changed. */
  PatchFailed: "patch_failed",
  /** A limit (running VMs, sizes) was reached. */
  LimitExceeded: "limit_exceeded",
  /** No running or recent command has this id (exec handles). */
  CommandNotFound: "command_not_found",
  /** A file or directory the operation needs does not exist in the guest. */
  FileNotFound: "file_not_found",
  /** No service of that name in the workspace. */
  ServiceNotFound: "service_not_found",
  /** A service exited before it was ready, or was not ready in time. */
  ServiceFailed: "service_failed",
  /** No shell of that id in the workspace. */
  ShellNotFound: "shell_not_found",
  /** The shell was closed, exited, or ended with its workspace's VM (stop, reset). */
  ShellClosed: "shell_closed",
  /** The workspace has no secret of that name. */
  SecretNotFound: "secret_not_found",
  /** The workspace's network policy does not allow the operation (e.g. publishing a port). */
  NetworkPolicy: "network_policy",
  /** A chat host has no pyro entry to check or repair. */
  HostNotRegistered: "host_not_registered",
  /** A chat host's own CLI failed to register pyro. */
  HostCommandFailed: "host_command_failed",
  /** A stopped workspace's disk cannot be read offline (not ext4, damaged, or refused as unsafe). */
  DiskUnreadable: "disk_unreadable",
  /** Anything we did not anticipate. */
  Internal: "internal_error",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/**
 * What the caller can do about an error, as data. Faces word it: the CLI as
 * a command line, MCP as a tool call.
 */
export type Fix =
  /** Boot a stopped or failed workspace again (its disk is kept). */
  | { kind: "start_workspace"; workspace: string }
  /** Stop a running workspace first (its disk is kept): the disk tools read a stopped one. */
  | { kind: "stop_workspace"; workspace: string }
  /** Use an existing workspace; these are the known ones. */
  | { kind: "find_workspace"; known: string[] }
  /** Stop or delete a running workspace (or raise the limit). */
  | { kind: "free_slot"; running: string[] }
  /** Delete the named snapshot first, or choose another name. */
  | { kind: "delete_snapshot"; workspace: string; snapshot: string }
  /** Read the file again and make the patch against its current content. */
  | { kind: "reread_file"; path?: string }
  /** Use a path inside /workspace (no `..`, no symlinks leading out). */
  | { kind: "stay_in_workspace" }
  /** Wait for a command still running, or find its result in the journal. */
  | { kind: "find_command"; running: { command_id: string; command: string }[] }
  /** Install the host packages pyro needs. */
  | { kind: "run_setup"; packages?: string[] }
  /** Check the host (QEMU, acceleration, environments); `note` says what else may help. */
  | { kind: "run_doctor"; note?: string }
  /** Build an environment again (once its cause is fixed). */
  | { kind: "pull_environment"; environment?: string; note?: string }
  /** Use one of the workspace's services (these are its names). */
  | { kind: "find_service"; workspace: string; known: string[] }
  /** Read the service's log to see why it failed. */
  | { kind: "read_service_logs"; workspace: string; service: string }
  /** Create a workspace with a network policy that allows this (the policy is fixed at create). */
  | { kind: "create_with_network"; policy: "egress" | "egress+published-ports" }
  /** Choose another host port, or let pyro choose one (publish only the guest port). */
  | { kind: "free_host_port"; port: number }
  /** Use one of the workspace's open shells (these are their ids). */
  | { kind: "find_shell"; workspace: string; known: string[] }
  /** Open a new shell; this one is gone. */
  | { kind: "open_shell"; workspace: string }
  /** Use one of the workspace's secrets (given at create; these are their names). */
  | { kind: "find_secret"; workspace: string; known: string[] };

export interface PyroErrorOptions {
  hint?: string;
  fix?: Fix;
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class PyroError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly fix: Fix | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: PyroErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PyroError";
    this.code = code;
    this.hint = options.hint;
    this.fix = options.fix;
    this.details = options.details;
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string; details?: Record<string, unknown> } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

export function isPyroError(error: unknown): error is PyroError {
  return error instanceof PyroError;
}

/** Wrap anything thrown into a PyroError, keeping PyroErrors as they are. */
export function toPyroError(error: unknown): PyroError {
  if (error instanceof PyroError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new PyroError(ErrorCodes.Internal, message, { cause: error });
}

/** Exit codes of the CLI (contract §11): 2 for usage errors, 1 for any other failure. */
export function exitCodeFor(error: PyroError): number {
  return error.code === ErrorCodes.UsageError ? 2 : 1;
}
