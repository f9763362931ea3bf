import { describe, expect, it } from "vitest";
import type { Pyro } from "../index.js";
import { MODE_TOOLS, PROFILE_TOOLS } from "./catalog.js";
import { toolDefinitions } from "./definitions.js";

// Listing tools never calls the SDK.
const pyro = {} as Pyro;

describe("toolDefinitions", () => {
  it("lists exactly a surface's tools, as MCP does", async () => {
    const tools = await toolDefinitions(pyro, { mode: "inspect" });
    expect(tools.map((t) => t.name).sort()).toEqual([...MODE_TOOLS.inspect].sort());
    for (const tool of tools) {
      expect(tool.inputSchema.type).toBe("object");
      expect(tool.outputSchema).toBeDefined();
    }
  });

  it("gives Anthropic's and OpenAI's shapes with the same schemas, without $schema", async () => {
    const mcp = await toolDefinitions(pyro, { profile: "workspace-full" });
    const anthropic = await toolDefinitions(pyro, {
      profile: "workspace-full",
      format: "anthropic",
    });
    const openai = await toolDefinitions(pyro, { profile: "workspace-full", format: "openai" });
    expect(anthropic.map((t) => t.name)).toEqual(mcp.map((t) => t.name));
    expect(mcp.length).toBe(PROFILE_TOOLS["workspace-full"].length);
    for (const [i, tool] of mcp.entries()) {
      const { $schema: _dialect, ...schema } = tool.inputSchema;
      expect(anthropic[i]).toEqual({
        name: tool.name,
        description: tool.description,
        input_schema: schema,
      });
      expect(openai[i]).toEqual({
        type: "function",
        function: { name: tool.name, description: tool.description, parameters: schema },
      });
      expect(JSON.stringify(anthropic[i])).not.toContain('"$schema"');
    }
  });
});
