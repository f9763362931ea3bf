/**
 * The names of the MCP server's tool sets (contract §5), defined once: the
 * MCP catalog gives them their tools; the chat-host onramps read and write
 * them in hosts' configs, below the MCP layer.
 */
export const PROFILES = ["vm-run", "workspace-core", "workspace-full"] as const;
export type Profile = (typeof PROFILES)[number];
export const DEFAULT_PROFILE: Profile = "workspace-core";

export const MODES = ["repro-fix", "inspect", "cold-start", "review-eval"] as const;
export type Mode = (typeof MODES)[number];
