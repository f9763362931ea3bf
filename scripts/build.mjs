// Bundle the CLI, the supervisor, the SDK entries and the guest agent with esbuild; emit type declarations with tsc.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import fs from "node:fs";

fs.rmSync("dist", { recursive: true, force: true });
const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  sourcemap: false,
  logLevel: "warning",
  splitting: true,
};
// The library entries (`pyro-mcp`, `pyro-mcp/mcp`) keep their npm dependencies
// external: they are installed beside them and shared with the user's code.
await build({
  ...common,
  entryPoints: { index: "src/index.ts", mcp: "src/mcp/index.ts" },
  outdir: "dist",
  external: [
    "commander",
    "tar",
    "diff",
    "zod",
    "jsonc-parser",
    "smol-toml",
    "@modelcontextprotocol/*",
  ],
  chunkNames: "chunks/[name]-[hash]",
});
// The processes pyro starts (the CLI, a supervisor per workspace) start faster
// with their small dependencies inside the bundle: fewer files to resolve and
// read. The MCP SDK and zod stay external; only `pyro mcp serve` loads them.
await build({
  ...common,
  entryPoints: { cli: "src/cli/main.ts", supervisor: "src/supervisor/main.ts" },
  outdir: "dist/bin",
  external: ["zod", "@modelcontextprotocol/*"],
  chunkNames: "chunks/[name]-[hash]",
  // jsonc-parser's default (UMD) build requires its parts at run time; its ES build bundles.
  alias: { "jsonc-parser": "./node_modules/jsonc-parser/lib/esm/main.js" },
  // CommonJS dependencies bundled into ESM need a require of their own.
  banner: {
    js: 'import { createRequire as __pyroRequire } from "node:module"; const require = __pyroRequire(import.meta.url);',
  },
});
// The agent runs in the guest with nothing but Node and what pyro's runtime disk
// holds. The shell module (a PTY and a terminal emulator) is a chunk of its own,
// loaded on the first shell_open; node-pty's native module is found beside it
// on the runtime disk (runtime-disk.ts), under node_modules/.
await build({
  ...common,
  entryPoints: { agent: "src/agent/main.ts" },
  outdir: "dist",
  chunkNames: "agent-chunks/[name]-[hash]",
  banner: {
    js: 'import { createRequire as __pyroRequire } from "node:module"; const require = __pyroRequire(import.meta.url);',
  },
});
// `pyro` turns Node's compile cache on (Node 22.1+) before it loads the bundle.
fs.writeFileSync(
  "dist/cli.js",
  `#!/usr/bin/env node
import module from "node:module";
module.enableCompileCache?.();
await import("./bin/cli.js");
`,
  { mode: 0o755 },
);
fs.writeFileSync("dist/supervisor.js", `import "./bin/supervisor.js";\n`);
execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
