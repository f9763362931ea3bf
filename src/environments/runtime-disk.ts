/**
 * The guest runtime: what goes on the read-only disk mounted at /opt/pyro.
 * Node (a pinned LTS build, see guest-node.ts), the bundled agent,
 * busybox-static and the init script. It is independent of the environment:
 * a pyro upgrade rebuilds this small disk, never the environment.
 */
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

/** What goes on the runtime disk; `guestNode` is the Node binary the agent runs on (guest-node.ts). */
export function runtimeFiles(guestNode: string): RuntimeFile[] {
  const busybox = findExecutable("busybox");
  if (!busybox) {
    throw new PyroError(ErrorCodes.HostRequirementMissing, "busybox-static is missing", {
      fix: { kind: "run_setup", packages: ["busybox-static"] },
    });
  }
  return [
    { target: "init", source: { content: RUNTIME_INIT }, mode: 0o755 },
    { target: "agent.js", source: { file: locateAgentBundle() }, mode: 0o644 },
    { target: "bin/node", source: { file: guestNode }, mode: 0o755 },
    { target: "bin/busybox", source: { file: busybox }, mode: 0o755 },
  ];
}
