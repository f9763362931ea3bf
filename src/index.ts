/**
 * pyro-mcp: the public SDK surface. `Pyro` is the front door; everything
 * else here is a payload type, an option type, or a published constant.
 * The MCP server is a separate entry point, `pyro-mcp/mcp`.
 */
export { Pyro, type PyroOptions, type Environments, type ChatHosts } from "./sdk/pyro.js";
export {
  CONNECTABLE_HOSTS,
  HOSTS,
  type ConnectableHostId,
  type HostId,
} from "./chat-hosts/hosts.js";
export type {
  ConnectOptions,
  ConnectResult,
  PrintConfigOptions,
  PrintedConfig,
} from "./chat-hosts/connect.js";
export type { HostCheck, HostDoctorReport, HostStatus } from "./chat-hosts/doctor.js";
export type { ServeOptions, ServerLaunch } from "./chat-hosts/launch.js";
export {
  Workspaces,
  type CreateWorkspaceOptions,
  type ExecOptions as WorkspaceExecOptions,
  type ExecStartOptions,
  type SecretEnvSpec,
  type ShellOpenOptions,
  type ShellRead,
  type ShellReadOptions,
  type WorkspaceShell,
} from "./sdk/workspaces.js";
export type { ExecStatus } from "./sdk/exec-handles.js";
export type { ProjectSource, ProjectOptions } from "./sdk/project.js";
export {
  PyroError,
  ErrorCodes,
  toPyroError,
  exitCodeFor,
  type ErrorCode,
  type Fix,
} from "./errors.js";
export { DEFAULTS, BOUNDS, OUTPUT_LIMITS } from "./limits.js";
export { VERSION } from "./version.js";
export { DEFAULT_PROFILE, MODES, PROFILES, type Mode, type Profile } from "./surfaces.js";
export { mcpToken, mcpTokenFile, MCP_TOKEN_ENV, type McpToken } from "./config/mcp-token.js";
export type { ProgressFn } from "./util/progress.js";
export { CATALOG, DEFAULT_ENVIRONMENT } from "./environments/catalog.js";
export type { RunOptions, RunResult } from "./run/run.js";
export type { DoctorReport, DoctorCheck, DoctorOptions } from "./daily-loop/doctor.js";
export type { PrepareOptions, PrepareResult } from "./daily-loop/prepare.js";
export type {
  EnvironmentInfo,
  EnvironmentInspection,
  PullResult,
  PruneResult,
} from "./environments/service.js";
export type { SetupResult } from "./host/requirements.js";
export type {
  Workspace,
  WorkspaceExecResult,
  NamedSnapshot,
  WorkspaceNetwork,
  WorkspaceService,
} from "./workspaces/payloads.js";
export type { ServiceStartOptions, ServiceLogs } from "./workspaces/services.js";
export type { PublishedPort, ServiceRecord, ShellRecord } from "./records/store.js";
export { SHELL_SIGNALS, type ShellSignal } from "./protocol/messages.js";
export { REDACTED } from "./secrets/redaction.js";
export { SECRET_LIMITS } from "./secrets/spec.js";
export { SEED_MODES, type SeedMode } from "./workspaces/seed.js";
export { SEED_LIMITS } from "./limits.js";
export type { SummaryShell } from "./workspaces/summary.js";
export { describeShell } from "./workspaces/shells.js";
export {
  LIVE_SERVICE_STATES,
  type ServiceInfo,
  type ServiceReadiness,
  type ServiceState,
} from "./protocol/messages.js";
export { NETWORK_POLICIES, type NetworkPolicy } from "./network/policy.js";
export type { DiffResult, DiffEntry } from "./workspaces/diff.js";
export type { JournalEntry } from "./workspaces/journal.js";
export type { WorkspaceSummary } from "./workspaces/summary.js";
export { formatSummary } from "./workspaces/summary.js";
export type { SkippedEntry } from "./workspaces/archives.js";
export {
  RUNTIME_ONLY_PATHS,
  type DiskExport,
  type DiskListing,
  type DiskRead,
} from "./workspaces/disk.js";
