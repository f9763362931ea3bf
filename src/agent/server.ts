/**
 * The agent's protocol server: the shared channel server with the agent's
 * op handlers, announcing itself with a ready event. Independent of where
 * its bytes come from, so the same code runs in the guest (virtio-serial)
 * and in unit tests (pipes).
 */
import type { Readable, Writable } from "node:stream";
import { ChannelServer } from "../protocol/channel-server.js";
import { VERSION as AGENT_VERSION } from "../version.js";
import { handlers } from "./handlers.js";

export class AgentServer extends ChannelServer {
  constructor(input: Readable, output: Writable) {
    super(input, output, (op) => (Object.hasOwn(handlers, op) ? handlers[op] : undefined), "host");
  }

  override start(): void {
    super.start({ type: "ready", agent_version: AGENT_VERSION });
  }
}
