/** The layer rule that `make check` runs (eslint.layers.js) refuses upward imports. */
import path from "node:path";
import { Linter } from "eslint";
import tseslint from "typescript-eslint";
import { describe, expect, it } from "vitest";
import layers, { LAYERS } from "../eslint.layers.js";

const srcDir = path.resolve("src");

function lint(file: string, code: string): string[] {
  const linter = new Linter({ configType: "flat" });
  const messages = linter.verify(
    code,
    [
      {
        files: ["**/*.ts"],
        languageOptions: { parser: tseslint.parser },
        plugins: { pyro: layers },
        rules: { "pyro/layers": ["error", { srcDir }] },
      },
    ],
    { filename: path.join(srcDir, file) },
  );
  return messages.map((m) => m.message);
}

describe("the layer rule", () => {
  it("refuses an upward import", () => {
    const messages = lint("vm/machine.ts", 'import { Pyro } from "../sdk/pyro.js";\n');
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/vm \(layer 9\) must not import sdk \(layer 2\)/);
  });

  it("refuses the SDK importing the MCP server, and lower layers the public entry", () => {
    expect(lint("sdk/pyro.ts", 'const m = await import("../mcp/server.js");\n')).toHaveLength(1);
    expect(lint("workspaces/exec.ts", 'export { Pyro } from "../index.js";\n')).toHaveLength(1);
  });

  it("lets imports go down, and tests reach anywhere", () => {
    expect(lint("mcp/server.ts", 'import { Pyro } from "../index.js";\n')).toEqual([]);
    expect(lint("workspaces/exec.ts", 'import { x } from "../protocol/client.js";\n')).toEqual([]);
    expect(lint("vm/machine.test.ts", 'import { Pyro } from "../sdk/pyro.js";\n')).toEqual([]);
  });

  it("keeps host code away from the guest agent", () => {
    expect(lint("vm/machine.ts", 'import { x } from "../agent/server.js";\n')[0]).toMatch(
      /guest agent/,
    );
  });

  it("knows every folder of src/", async () => {
    const fs = await import("node:fs");
    for (const entry of fs.readdirSync(srcDir)) {
      if (entry.endsWith(".test.ts") || entry === "README.md") continue;
      expect(LAYERS, entry).toHaveProperty([entry]);
    }
  });
});
