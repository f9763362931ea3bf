/** pyro-mcp: the public SDK surface. */
export { Pyro, type PyroOptions } from "./sdk/pyro.js";
export { PyroError, ErrorCodes, type ErrorCode } from "./errors.js";
export type { RunOptions, RunResult } from "./workspaces/run.js";
export type { DoctorReport, DoctorCheck, DoctorOptions } from "./doctor/doctor.js";
export type {
  EnvironmentInfo,
  EnvironmentInspection,
  PullResult,
  PruneResult,
} from "./environments/service.js";
export type { SetupResult } from "./host/requirements.js";
export { CATALOG, DEFAULT_ENVIRONMENT } from "./environments/catalog.js";
export { VERSION } from "./version.js";
export type {
  Workspace,
  WorkspaceExecResult,
  CreateWorkspaceOptions,
  ExecOptions as WorkspaceExecOptions,
} from "./workspaces/service.js";
export type { DiffResult, DiffEntry } from "./workspaces/diff.js";
export type { JournalEntry } from "./workspaces/journal.js";
export type { PrepareOptions, PrepareResult } from "./workspaces/prepare.js";
export type { McpServerOptions } from "./mcp/server.js";
export {
  TOOL_NAMES,
  PROFILES,
  MODES,
  PROFILE_TOOLS,
  MODE_TOOLS,
  type ToolName,
  type Profile,
  type Mode,
} from "./mcp/catalog.js";
export type { ProjectSource } from "./workspaces/project.js";
export type { WorkspaceSummary } from "./workspaces/summary.js";
