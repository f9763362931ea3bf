/**
 * Test support for the agent's unit tests (not a test file itself): the real
 * agent server wired to the real host client in-process over two pipes, and
 * small waiting helpers. `useAgentHarness()` registers the hooks that clean up.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, afterEach, beforeAll } from "vitest";
import { AgentClient } from "../protocol/client.js";
import { AgentServer } from "./server.js";

export interface Harness {
  client: AgentClient;
  server: AgentServer;
  hostToAgent: PassThrough;
  agentToHost: PassThrough;
  fatal: Error[];
}

const harnesses: Harness[] = [];

export function connect(): Harness {
  const hostToAgent = new PassThrough();
  const agentToHost = new PassThrough();
  const server = new AgentServer(hostToAgent, agentToHost);
  const fatal: Error[] = [];
  server.on("fatal", (error: Error) => fatal.push(error));
  server.start();
  const client = new AgentClient(agentToHost, hostToAgent);
  const harness = { client, server, hostToAgent, agentToHost, fatal };
  harnesses.push(harness);
  return harness;
}

let tmp: string;

/** Call once per test file: a scratch directory for the file, harnesses closed after each test. */
export function useAgentHarness(): void {
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-agent-test-"));
  });
  afterAll(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  afterEach(() => {
    for (const h of harnesses.splice(0)) h.client.close();
  });
}

let counter = 0;
export function scratch(name = "dir"): string {
  const dir = path.join(tmp, `${name}-${++counter}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** A pid counts as gone once it no longer exists or is only a zombie. */
export function pidGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

export async function waitFor(
  condition: () => boolean,
  what: string,
  attempts = 100,
): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/**
 * Settle `promise` or fail with a clear message instead of a bare test
 * timeout: the bugs these tests look for show up as requests that hang.
 */
export function settleWithin<T>(promise: Promise<T>, what: string, ms = 1500): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} never settled`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

export { rejection } from "../protocol/testing.js";
