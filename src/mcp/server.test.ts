/**
 * The MCP server through the official client, over an in-memory transport,
 * with the SDK faked: schemas every host accepts, results whose structured
 * copy says everything the text says, progress while exec waits.
 */
import { Client, InMemoryTransport } from "@modelcontextprotocol/client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CATALOG, OUTPUT_LIMITS, type Pyro } from "../index.js";
import { MODES, PROFILES, type Mode, type Profile } from "./catalog.js";
import { serverInstructions } from "./instructions.js";
import { callProgress, HEARTBEAT_MS } from "./progress.js";
import { createMcpServer, type McpServerOptions } from "./server.js";
import { surfaceFor } from "./catalog.js";

const clients: Client[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  vi.useRealTimers();
});

async function connect(pyro: Partial<FakePyro>, options: McpServerOptions = {}): Promise<Client> {
  const server = createMcpServer(pyro as unknown as Pyro, options);
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: "test", version: "1" });
  await client.connect(clientSide);
  clients.push(client);
  return client;
}

type FakePyro = { workspaces: Record<string, unknown>; environments: Record<string, unknown> };

interface Result {
  error: boolean;
  text: string;
  data: Record<string, unknown>;
}

async function call(
  client: Client,
  name: string,
  args: Record<string, unknown>,
  onprogress?: (p: { progress: number; message?: string }) => void,
): Promise<Result> {
  const result = await client.callTool({ name, arguments: args }, onprogress ? { onprogress } : {});
  const content = result.content as { type: string; text?: string }[];
  return {
    error: result.isError === true,
    text: content.map((c) => c.text ?? "").join("\n"),
    data: (result.structuredContent ?? {}) as Record<string, unknown>,
  };
}

/** What the text says beyond the payload (its `note:` lines) is in the structured copy too. */
function expectNotesInBoth(result: Result): string[] {
  const lines = result.text.split("\n").filter((l) => l.startsWith("note: "));
  const notes = (result.data.notes ?? []) as string[];
  expect(lines.map((l) => l.slice("note: ".length))).toEqual(notes);
  return notes;
}

const workspace = {
  id: "ws_1",
  name: null,
  state: "started",
  environment: "debian:12",
  origin_kind: "empty",
  origin_ref: null,
  failure_reason: null,
  expires_at: null,
  command_count: 0,
  boot_kind: "cold",
};

function completed(stdout: string, extra: Record<string, unknown> = {}) {
  return {
    status: "completed",
    command_id: "cmd_1",
    workspace_id: "ws_1",
    sequence: 3,
    command: "big",
    cwd: "/workspace",
    exit_code: 0,
    stdout,
    stderr: "",
    stdout_encoding: "utf-8",
    stderr_encoding: "utf-8",
    timed_out: false,
    truncated: false,
    duration_ms: 12,
    ...extra,
  };
}

const surfaces: { profile?: Profile; mode?: Mode }[] = [
  ...PROFILES.map((profile) => ({ profile })),
  ...MODES.map((mode) => ({ mode })),
  ...MODES.map((mode) => ({ profile: "workspace-full" as const, mode })),
];

describe("tool schemas", () => {
  it("are objects at the top, describe every parameter, and offer the catalog as the environment enum", async () => {
    for (const surface of surfaces) {
      const client = await connect({}, surface);
      const { tools } = await client.listTools();
      for (const tool of tools) {
        const where = `${JSON.stringify(surface)} ${tool.name}`;
        const schema = tool.inputSchema as Record<string, unknown>;
        expect(schema.type, where).toBe("object");
        for (const combinator of ["anyOf", "oneOf", "allOf", "not"])
          expect(schema[combinator], `${where} ${combinator}`).toBeUndefined();
        const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
        for (const [param, spec] of Object.entries(properties)) {
          expect(typeof spec.description, `${where}.${param}`).toBe("string");
          expect((spec.description as string).length, `${where}.${param}`).toBeGreaterThan(10);
        }
        if (properties.environment)
          expect(properties.environment.enum, where).toEqual(CATALOG.map((e) => e.name));
        const output = tool.outputSchema as { properties?: Record<string, unknown> };
        expect(output.properties?.notes, where).toBeDefined();
      }
    }
  });
});

describe("results", () => {
  it("exec with big output: the structured copy carries the cut marker, truncated and the note", async () => {
    const big = "x".repeat(OUTPUT_LIMITS.modelChars + 5000);
    const client = await connect({
      workspaces: {
        execStart: () => ({ command_id: "cmd_1" }),
        execWait: async () => completed(big),
      },
    });
    const result = await call(client, "workspace_exec", { workspace_id: "ws_1", command: "big" });
    expect(result.error, result.text).toBe(false);
    expect(result.data.truncated).toBe(true);
    expect(result.data.stdout).toMatch(/\[stdout cut here: 24576 of 29576 characters shown/);
    expect(result.text).toContain("[stdout cut here");
    const notes = expectNotesInBoth(result);
    expect(notes.join("\n")).toMatch(/stdout was cut .*> \/workspace\/out\.log/);
  });

  it("exec still running: the next step is in the structured copy too", async () => {
    const client = await connect({
      workspaces: {
        execStart: () => ({ command_id: "cmd_9" }),
        execWait: async () => ({
          status: "running",
          command_id: "cmd_9",
          workspace_id: "ws_1",
          command: "sleep 100",
          started_at: "now",
          stdout_tail: "step 1\n",
          stderr_tail: "",
        }),
      },
    });
    const result = await call(client, "workspace_exec", {
      workspace_id: "ws_1",
      command: "sleep 100",
    });
    expect(result.data.status).toBe("running");
    const notes = expectNotesInBoth(result);
    expect(notes[0]).toMatch(/call this tool again with the same id and command_id "cmd_9"/);
  });

  it("exec takes command or command_id, never both or neither", async () => {
    const client = await connect({ workspaces: {} });
    const both = await call(client, "workspace_exec", {
      workspace_id: "ws_1",
      command: "true",
      command_id: "cmd_1",
    });
    expect(both.error).toBe(true);
    expect(both.text).toMatch(/usage_error.*not both/);
    const neither = await call(client, "workspace_exec", { workspace_id: "ws_1" });
    expect(neither.error).toBe(true);
    expect(neither.text).toMatch(/give a command to run/);
  });

  it("file reads, listings, logs and diffs say in both copies where they were cut and how to get the rest", async () => {
    const client = await connect(
      {
        workspaces: {
          readFile: async () => ({
            workspace_id: "ws_1",
            path: "/workspace/big.txt",
            content: "a\n".repeat(10),
            encoding: "utf-8",
            size: 100_000,
            bytes_read: 20,
            truncated: true,
          }),
          listFiles: async () => ({
            workspace_id: "ws_1",
            path: "/workspace",
            entries: Array.from({ length: 2500 }, (_, i) => ({
              path: `/workspace/f${i}`,
              type: "file",
              size: 1,
            })),
            truncated: false,
          }),
          logs: () => ({
            workspace_id: "ws_1",
            entries: [
              {
                sequence: 1,
                command: "make",
                cwd: "/workspace",
                started_at: "now",
                duration_ms: 1,
                exit_code: 2,
                timed_out: false,
                stdout: "y".repeat(5000),
                stderr: "",
                stdout_encoding: "utf-8",
                stderr_encoding: "utf-8",
                truncated: false,
              },
            ],
          }),
          diff: async () => ({
            workspace_id: "ws_1",
            changed: true,
            patch: "+".repeat(OUTPUT_LIMITS.modelChars + 1),
            entries: [{ path: "a", status: "modified", kind: "text" }],
          }),
        },
      },
      { profile: "workspace-full" },
    );
    const read = await call(client, "workspace_file_read", { workspace_id: "ws_1", path: "big" });
    expect(read.data).toMatchObject({ truncated: true, bytes_read: 20, size: 100_000 });
    expect(expectNotesInBoth(read)[0]).toMatch(/cut at 20 of 100000 bytes.*tail -c \+21/);

    const list = await call(client, "workspace_file_list", { workspace_id: "ws_1" });
    expect(list.data.truncated).toBe(true);
    expect((list.data.entries as unknown[]).length).toBe(2000);
    expect(expectNotesInBoth(list)[0]).toMatch(/list a subdirectory/);

    const logs = await call(client, "workspace_logs", { workspace_id: "ws_1" });
    const entry = (logs.data.entries as { stdout: string }[])[0]!;
    expect(entry.stdout).toMatch(/\[#1 stdout cut here: 2000 of 5000/);
    expect(expectNotesInBoth(logs)[0]).toMatch(/workspace_logs with sequence N/);

    const diff = await call(client, "workspace_diff", { workspace_id: "ws_1" });
    expect(diff.data.truncated).toBe(true);
    expect(expectNotesInBoth(diff)[0]).toMatch(/the patch was cut/);
  });

  it("a create that had to build its environment says so and points at pyro prepare", async () => {
    const client = await connect({
      workspaces: {
        create: async () => ({ ...workspace, seed_skipped: [], environment_built: true }),
      },
    });
    const created = await call(client, "workspace_create", {});
    expect(created.data.environment_built).toBe(true);
    expect(expectNotesInBoth(created)[0]).toMatch(/built it first.*pyro prepare debian:12/);
  });

  it("says in the instructions when the default environment is not built", async () => {
    const surface = surfaceFor(undefined, undefined);
    expect(serverInstructions(surface, undefined)).not.toMatch(/pyro prepare/);
    const cold = serverInstructions(surface, undefined, { environment: "debian:12", ready: false });
    expect(cold).toMatch(/debian:12 is not built.*pyro prepare debian:12/);
    const client = await connect({}, { environmentReady: false });
    expect(client.getInstructions()).toMatch(/pyro prepare debian:12/);
  });
});

describe("progress", () => {
  it("exec sends the latest output line as progress to a client that asked for it", async () => {
    const client = await connect({
      workspaces: {
        execStart: () => ({ command_id: "cmd_1" }),
        execWait: async (
          _id: string,
          _wait: number,
          options: { onProgress?: (p: unknown) => void },
        ) => {
          for (const [i, line] of [null, "step 1", "step 2"].entries()) {
            options.onProgress?.({
              command_id: "cmd_1",
              elapsed_ms: i * 1000,
              output_bytes: i * 7,
              latest_line: line,
            });
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          return completed("done\n");
        },
      },
    });
    const heard: { progress: number; message?: string }[] = [];
    const result = await call(
      client,
      "workspace_exec",
      { workspace_id: "ws_1", command: "slow" },
      (p) => heard.push(p),
    );
    expect(result.data.stdout).toBe("done\n");
    expect(heard.map((p) => p.message)).toEqual([
      "running for 0 s, no output yet",
      "step 1",
      "step 2",
    ]);
    for (let i = 1; i < heard.length; i++)
      expect(heard[i]!.progress).toBeGreaterThan(heard[i - 1]!.progress);
  });

  it("sends a heartbeat while a call says nothing, and nothing after it ends or without a token", async () => {
    vi.useFakeTimers();
    const sent: { progress: number; message: string }[] = [];
    const extra = {
      mcpReq: {
        _meta: { progressToken: 7 },
        signal: new AbortController().signal,
        notify: async (n: { params: { progress: number; message: string } }) => {
          sent.push(n.params);
        },
      },
    };
    const progress = callProgress(extra as never, "workspace_create");
    await vi.advanceTimersByTimeAsync(HEARTBEAT_MS - 100);
    expect(sent).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(200);
    expect(sent).toEqual([{ progressToken: 7, progress: 5, message: expect.any(String) }]);
    expect(sent[0]!.message).toMatch(/workspace_create: still working \(5 s\)/);
    progress.progress("a line");
    await vi.advanceTimersByTimeAsync(HEARTBEAT_MS - 100);
    expect(sent).toHaveLength(2);
    progress.close();
    progress.progress("late");
    await vi.advanceTimersByTimeAsync(HEARTBEAT_MS * 3);
    expect(sent).toHaveLength(2);

    const silent = callProgress({ mcpReq: { signal: extra.mcpReq.signal } } as never, "x");
    silent.progress("nothing");
    silent.close();
  });
});
