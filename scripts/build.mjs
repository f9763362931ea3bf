// Bundle the CLI, the SDK entry and the guest agent with esbuild; emit type declarations with tsc.
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
};
// Host code keeps its npm dependencies external (they are installed beside it).
const external = ["commander", "tar", "diff", "zod", "@modelcontextprotocol/*"];
await build({
  ...common,
  entryPoints: {
    cli: "src/cli/main.ts",
    index: "src/index.ts",
    mcp: "src/mcp/index.ts",
    supervisor: "src/supervisor/main.ts",
  },
  outdir: "dist",
  external,
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  banner: { js: "" },
});
// The agent runs in the guest with nothing but Node: bundle everything into one file.
await build({ ...common, entryPoints: { agent: "src/agent/main.ts" }, outdir: "dist" });
const cli = "dist/cli.js";
fs.writeFileSync(cli, `#!/usr/bin/env node\n${fs.readFileSync(cli, "utf8")}`);
fs.chmodSync(cli, 0o755);
execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
