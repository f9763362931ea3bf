/**
 * Error codes that travel on the wire. The agent answers a failed op with
 * one of these; the supervisor relays them unchanged and adds its own; the
 * host client maps them to PyroError codes once (`fromWire` in client.ts).
 */
export const WireCodes = {
  /** The host sent arguments the op does not accept (a host bug, not a user's). */
  BadArgs: "bad_args",
  /** The host cancelled the op (its caller went away). */
  Cancelled: "cancelled",
  CwdNotFound: "cwd_not_found",
  NotFound: "not_found",
  NotAFile: "not_a_file",
  NotADirectory: "not_a_directory",
  /** A path outside the op's scope, or one that leads out through a symlink. */
  PathNotAllowed: "path_not_allowed",
  TarFailed: "tar_failed",
  ServiceNotFound: "service_not_found",
  /** A service of that name is still running. */
  ServiceExists: "service_exists",
  ShellNotFound: "shell_not_found",
  /** The shell's process has exited: it takes no more input. */
  ShellExited: "shell_exited",
  SecretNotFound: "secret_not_found",
  /** A limit of the agent's (how many services or shells) is reached. */
  LimitExceeded: "limit_exceeded",
  UnknownOp: "unknown_op",
  /** Anything else the agent did not anticipate. */
  AgentError: "agent_error",
  /** Supervisor: the VM behind it died. */
  VmDied: "vm_died",
  /** Supervisor: copying the running VM for a fork failed. */
  ForkFailed: "fork_failed",
  /** Supervisor: QEMU would not forward (or stop forwarding) a host port. */
  PublishFailed: "publish_failed",
  /** Standby supervisor: it cannot take the workspace over (taken, not ready, broken). */
  ClaimRefused: "claim_refused",
  /** Supervisor: it is stopping or replacing its VM already. */
  Busy: "busy",
  /** Supervisor: the new VM of a reset did not come up (the workspace is failed then). */
  ResetFailed: "reset_failed",
} as const;

export type WireCode = (typeof WireCodes)[keyof typeof WireCodes];

const KNOWN = new Set<string>(Object.values(WireCodes));

/** A code as received from the other side: a declared one, or agent_error. */
export function wireCode(value: unknown): WireCode {
  return typeof value === "string" && KNOWN.has(value) ? (value as WireCode) : WireCodes.AgentError;
}

/** A failure an op handler reports with a wire code. */
export class OpError extends Error {
  constructor(
    readonly code: WireCode,
    message: string,
  ) {
    super(message);
    this.name = "OpError";
  }
}
