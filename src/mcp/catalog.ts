/**
 * Which MCP tools exist, and which a server shows: the contract's exact tool
 * names, its three profiles and its four modes, as data. A mode is a
 * narrowed profile of its own: it picks its tool set exactly.
 *
 * Tools whose feature has not landed yet are listed in PENDING with that
 * feature; a server leaves them out until it has, and says so.
 */
export const TOOL_NAMES = [
  "vm_run",
  "vm_list_environments",
  "vm_create",
  "vm_start",
  "vm_exec",
  "vm_stop",
  "vm_delete",
  "vm_status",
  "vm_network_info",
  "vm_reap_expired",
  "workspace_create",
  "workspace_list",
  "workspace_update",
  "workspace_status",
  "workspace_logs",
  "workspace_delete",
  "workspace_stop",
  "workspace_start",
  "workspace_fork",
  "workspace_sync_push",
  "workspace_exec",
  "workspace_file_list",
  "workspace_file_read",
  "workspace_file_write",
  "workspace_patch_apply",
  "workspace_export",
  "workspace_diff",
  "workspace_reset",
  "workspace_summary",
  "workspace_disk_export",
  "workspace_disk_list",
  "workspace_disk_read",
  "snapshot_create",
  "snapshot_list",
  "snapshot_delete",
  "shell_open",
  "shell_read",
  "shell_write",
  "shell_signal",
  "shell_close",
  "service_start",
  "service_list",
  "service_status",
  "service_logs",
  "service_stop",
] as const;

export type ToolName = (typeof TOOL_NAMES)[number];

export { DEFAULT_PROFILE, MODES, PROFILES, type Mode, type Profile } from "../surfaces.js";
import { DEFAULT_PROFILE, type Mode, type Profile } from "../surfaces.js";

const VM_RUN: ToolName[] = ["vm_run", "vm_list_environments"];

const WORKSPACE_CORE: ToolName[] = [
  ...VM_RUN,
  "workspace_create",
  "workspace_list",
  "workspace_status",
  "workspace_exec",
  "workspace_file_list",
  "workspace_file_read",
  "workspace_file_write",
  "workspace_patch_apply",
  "workspace_diff",
  "workspace_export",
  "workspace_reset",
  "workspace_summary",
  "workspace_delete",
];

export const PROFILE_TOOLS: Record<Profile, readonly ToolName[]> = {
  "vm-run": VM_RUN,
  "workspace-core": WORKSPACE_CORE,
  "workspace-full": TOOL_NAMES,
};

export const MODE_TOOLS: Record<Mode, readonly ToolName[]> = {
  "repro-fix": [
    "workspace_create",
    "workspace_list",
    "workspace_update",
    "workspace_exec",
    "workspace_file_read",
    "workspace_file_write",
    "workspace_file_list",
    "workspace_patch_apply",
    "workspace_diff",
    "workspace_export",
    "workspace_reset",
    "workspace_summary",
    "workspace_delete",
  ],
  inspect: [
    "workspace_create",
    "workspace_file_list",
    "workspace_file_read",
    "workspace_exec",
    "workspace_export",
    "workspace_summary",
    "workspace_delete",
  ],
  "cold-start": [
    "workspace_create",
    "workspace_exec",
    "service_start",
    "service_status",
    "service_logs",
    "service_stop",
    "workspace_file_read",
    "workspace_export",
    "workspace_summary",
    "workspace_delete",
  ],
  "review-eval": [
    "workspace_create",
    "snapshot_create",
    "snapshot_list",
    "shell_open",
    "shell_read",
    "shell_write",
    "shell_close",
    "workspace_exec",
    "workspace_summary",
    "workspace_export",
    "workspace_reset",
    "workspace_delete",
  ],
};

/** Tools of the contract whose feature has not landed yet, and that feature. */
export const PENDING: Partial<Record<ToolName, string>> = {};

/** Optional capabilities whose parameters appear in tool schemas only where the surface includes them. */
export type Feature = "lifecycle" | "snapshots" | "network" | "secrets";

export interface Surface {
  profile: Profile;
  mode: Mode | undefined;
  /** The contract's tool set for this profile or mode. */
  contractTools: readonly ToolName[];
  /** What the server registers: the contract set without pending tools. */
  tools: ToolName[];
  /** Contract tools left out because their feature has not landed. */
  pending: { tool: ToolName; feature: string }[];
  features: Set<Feature>;
}

/** The parameter features a profile's schemas show. */
function profileFeatures(profile: Profile): Feature[] {
  return profile === "workspace-full" ? ["lifecycle", "snapshots", "network", "secrets"] : [];
}

/** The parameter features a mode's schemas show (never secrets: they are for workspace-full alone). */
function modeFeatures(mode: Mode): Feature[] {
  if (mode === "review-eval") return ["snapshots"];
  if (mode === "cold-start") return ["network"];
  // Inspect mode never gets network parameters: its workspaces have no network.
  return [];
}

/**
 * The tool surface of a profile, of a mode, or of a mode within a profile
 * (the mode narrows it: the tools and parameters both have). A mode alone
 * decides by itself; neither given is the default profile.
 */
export function surfaceFor(profile: Profile | undefined, mode: Mode | undefined): Surface {
  let contractTools: readonly ToolName[];
  let features: Feature[];
  if (mode && profile) {
    const within = PROFILE_TOOLS[profile];
    contractTools = MODE_TOOLS[mode].filter((tool) => within.includes(tool));
    const allowed = profileFeatures(profile);
    features = modeFeatures(mode).filter((feature) => allowed.includes(feature));
  } else if (mode) {
    contractTools = MODE_TOOLS[mode];
    features = modeFeatures(mode);
  } else {
    contractTools = PROFILE_TOOLS[profile ?? DEFAULT_PROFILE];
    features = profileFeatures(profile ?? DEFAULT_PROFILE);
  }
  const tools = contractTools.filter((tool) => PENDING[tool] === undefined);
  const pending = contractTools.flatMap((tool) => {
    const feature = PENDING[tool];
    return feature === undefined ? [] : [{ tool, feature }];
  });
  return {
    profile: profile ?? DEFAULT_PROFILE,
    mode,
    contractTools,
    tools,
    pending,
    features: new Set(features),
  };
}
