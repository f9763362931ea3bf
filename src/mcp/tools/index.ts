/** Every implemented MCP tool, in the contract's order of groups. */
import type { Tool } from "../tool.js";
import { workspaceDiskExport, workspaceDiskList, workspaceDiskRead } from "./disk.js";
import { workspaceExec } from "./exec.js";
import {
  workspaceExport,
  workspaceFileList,
  workspaceFileRead,
  workspaceFileWrite,
  workspacePatchApply,
  workspaceSyncPush,
} from "./files.js";
import { shellClose, shellOpen, shellRead, shellSignal, shellWrite } from "./shells.js";
import { snapshotCreate, snapshotDelete, snapshotList } from "./snapshots.js";
import { serviceList, serviceLogs, serviceStart, serviceStatus, serviceStop } from "./services.js";
import {
  vmCreate,
  vmListEnvironments,
  vmNetworkInfo,
  vmReapExpired,
  vmRun,
  vmTwins,
} from "./vm.js";
import {
  workspaceCreate,
  workspaceDelete,
  workspaceDiff,
  workspaceFork,
  workspaceList,
  workspaceLogs,
  workspaceReset,
  workspaceStart,
  workspaceStatus,
  workspaceStop,
  workspaceSummary,
  workspaceUpdate,
} from "./workspaces.js";

export const TOOLS: Tool[] = [
  vmRun,
  vmListEnvironments,
  vmCreate,
  ...vmTwins,
  vmNetworkInfo,
  vmReapExpired,
  workspaceCreate,
  workspaceList,
  workspaceUpdate,
  workspaceStatus,
  workspaceLogs,
  workspaceDelete,
  workspaceStop,
  workspaceStart,
  workspaceFork,
  workspaceSyncPush,
  workspaceExec,
  workspaceFileList,
  workspaceFileRead,
  workspaceFileWrite,
  workspacePatchApply,
  workspaceExport,
  workspaceDiff,
  workspaceReset,
  workspaceSummary,
  workspaceDiskExport,
  workspaceDiskList,
  workspaceDiskRead,
  snapshotCreate,
  snapshotList,
  snapshotDelete,
  shellOpen,
  shellRead,
  shellWrite,
  shellSignal,
  shellClose,
  serviceStart,
  serviceList,
  serviceStatus,
  serviceLogs,
  serviceStop,
];
