/**
 * MCP progress for one tool call. A client that sends a progress token
 * hears that the call is alive: the tool's own messages (exec's latest
 * output line) and, when the tool says nothing for a while, a heartbeat.
 * Hosts that reset their tool timeout on progress then keep waiting for
 * long calls (a cold environment build, a long command) instead of giving up.
 */
import type { ServerContext } from "@modelcontextprotocol/server";
import type { CallContext } from "./tool.js";

export const HEARTBEAT_MS = 5000;
const MESSAGE_CHARS = 200;

export interface CallProgress extends CallContext {
  /** Stop reporting (before the result goes out: nothing follows it). */
  close(): void;
}

/** Progress for a call: real when the request carried a progress token, else a no-op. */
export function callProgress(extra: ServerContext | undefined, label: string): CallProgress {
  const token = extra?.mcpReq._meta?.progressToken;
  const signal = extra?.mcpReq.signal;
  if (token === undefined || !extra) return { progress: () => {}, close: () => {}, signal };
  const started = Date.now();
  let last = 0;
  let lastSentAt = started;
  let closed = false;
  const send = (message: string) => {
    if (closed) return;
    // Seconds since the call began: increases with every notification, as the spec asks.
    const progress = Math.max(Math.round((Date.now() - started) / 100) / 10, last + 0.1);
    last = Math.round(progress * 10) / 10;
    lastSentAt = Date.now();
    const clipped =
      message.length > MESSAGE_CHARS ? `${message.slice(0, MESSAGE_CHARS - 1)}…` : message;
    extra.mcpReq
      .notify({
        method: "notifications/progress",
        params: { progressToken: token, progress: last, message: clipped },
      })
      .catch(() => {
        // The client went away: the result (if any) will not arrive either.
      });
  };
  const heartbeat = setInterval(() => {
    if (Date.now() - lastSentAt >= HEARTBEAT_MS)
      send(`${label}: still working (${Math.round((Date.now() - started) / 1000)} s)`);
  }, HEARTBEAT_MS / 5);
  return {
    progress: send,
    signal,
    close: () => {
      closed = true;
      clearInterval(heartbeat);
    },
  };
}
