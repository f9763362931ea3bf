/**
 * pyro-mcp/mcp: the MCP server, a separate entry point so that programs
 * using only the SDK never load the MCP SDK.
 */
export { createMcpServer, type McpServerOptions } from "./server.js";
export {
  toolDefinitions,
  TOOL_FORMATS,
  type ToolFormat,
  type ToolDefinitionOptions,
  type McpToolDefinition,
  type OpenAiToolDefinition,
  type AnthropicToolDefinition,
} from "./definitions.js";
export { serveOverHttp, serveOverStdio, MCP_PATH, type HttpServeOptions } from "./serve.js";
export {
  TOOL_NAMES,
  PROFILES,
  MODES,
  PROFILE_TOOLS,
  MODE_TOOLS,
  DEFAULT_PROFILE,
  surfaceFor,
  type ToolName,
  type Profile,
  type Mode,
  type Surface,
} from "./catalog.js";
