/**
 * The guest runtime: what goes on the read-only disk mounted at /opt/pyro.
 * Node (a pinned LTS build, see guest-node.ts), the bundled agent and its
 * chunks, node-pty's prebuilt native module (for shells; the agent finds it
 * under node_modules/ beside itself), busybox-static and the init script. It is independent of the environment:
 * a pyro upgrade rebuilds this small disk, never the environment.
 */
import fs from "node:fs";
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

/** The agent's lazily loaded chunks (dist/agent-chunks/), beside the bundle. */
function agentChunks(agentBundle: string): RuntimeFile[] {
  const dir = path.join(path.dirname(agentBundle), "agent-chunks");
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((file) => file.endsWith(".js"))
    .sort()
    .map((file) => ({
      target: `agent-chunks/${file}`,
      source: { file: path.join(dir, file) },
      mode: 0o644,
    }));
}

/** node-pty's native module for linux-x64, an npm dependency of pyro (prebuilt, no compiler needed). */
const PTY_PACKAGE = "@lydell/node-pty-linux-x64";

function ptyFiles(): RuntimeFile[] {
  let native: string;
  try {
    native = createRequire(import.meta.url).resolve(`${PTY_PACKAGE}/pty.node`);
  } catch {
    throw new PyroError(ErrorCodes.HostRequirementMissing, `${PTY_PACKAGE} is not installed`, {
      hint: "reinstall pyro with npm (without --omit=optional); shells need node-pty's native module",
    });
  }
  return [
    { target: `node_modules/${PTY_PACKAGE}/pty.node`, source: { file: native }, mode: 0o644 },
    {
      target: `node_modules/${PTY_PACKAGE}/package.json`,
      source: { file: path.join(path.dirname(native), "package.json") },
      mode: 0o644,
    },
  ];
}

/** What goes on the runtime disk; `guestNode` is the Node binary the agent runs on (guest-node.ts). */
export function runtimeFiles(guestNode: string): RuntimeFile[] {
  const busybox = findExecutable("busybox");
  if (!busybox) {
    throw new PyroError(ErrorCodes.HostRequirementMissing, "busybox-static is missing", {
      fix: { kind: "run_setup", packages: ["busybox-static"] },
    });
  }
  const agent = locateAgentBundle();
  return [
    { target: "init", source: { content: RUNTIME_INIT }, mode: 0o755 },
    { target: "agent.js", source: { file: agent }, mode: 0o644 },
    ...agentChunks(agent),
    ...ptyFiles(),
    { target: "bin/node", source: { file: guestNode }, mode: 0o755 },
    { target: "bin/busybox", source: { file: busybox }, mode: 0o755 },
  ];
}
