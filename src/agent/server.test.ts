/**
 * The agent server and the host client in-process over two pipes: the
 * handshake, fatal stream errors, and frames arriving together.
 */
import os from "node:os";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors.js";
import {
  FrameDecoder,
  FrameKind,
  Stream,
  encodeDataFrame,
  encodeEofFrame,
  encodeFrame,
  encodeJsonFrame,
  parseJsonPayload,
  type Frame,
} from "../protocol/frames.js";
import { PROTOCOL_VERSION } from "../protocol/messages.js";
import { VERSION } from "../version.js";
import { AgentServer } from "./server.js";
import { connect, rejection, useAgentHarness, waitFor } from "./testing.js";

useAgentHarness();

describe("AgentServer handshake", () => {
  it("announces itself with a ready Event on channel 0", async () => {
    const agentToHost = new PassThrough();
    const server = new AgentServer(new PassThrough(), agentToHost);
    server.start();
    const chunk = agentToHost.read() as Buffer;
    const [frame] = new FrameDecoder().push(chunk);
    expect(frame!.kind).toBe(FrameKind.Event);
    expect(frame!.channel).toBe(0);
    expect(parseJsonPayload(frame!.payload)).toEqual({ type: "ready", agent_version: VERSION });
  });

  it("answers hello", async () => {
    const { client } = connect();
    const hello = await client.hello();
    expect(hello.protocol_version).toBe(PROTOCOL_VERSION);
    expect(hello.agent_version).toBe(VERSION);
    expect(hello.kernel_release).toBe(os.release());
    expect(hello.uptime_seconds).toBeGreaterThan(0);
  });

  it("answers sync", async () => {
    const { client } = connect();
    await expect(client.request("sync", {})).resolves.toEqual({});
  });

  it("refuses an unknown op with unknown_op and stays usable", async () => {
    const { client } = connect();
    const error = await rejection(client.request("nope" as "sync", {}));
    expect(error.code).toBe(ErrorCodes.GuestError);
    expect(error.details).toEqual({ guest_code: "unknown_op" });
    // Not even inherited object properties count as ops.
    const proto = await rejection(client.request("constructor" as "sync", {}));
    expect(proto.details).toEqual({ guest_code: "unknown_op" });
    expect((await client.hello()).protocol_version).toBe(PROTOCOL_VERSION);
  });

  it("reports a broken host stream as fatal", () => {
    const { hostToAgent, fatal } = connect();
    hostToAgent.write(Buffer.from("definitely not a frame"));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.name).toBe("ProtocolError");
  });

  it("reports a frame kind the host must not send as fatal", () => {
    const { hostToAgent, fatal } = connect();
    hostToAgent.write(encodeJsonFrame(FrameKind.Response, 99, { ok: true, result: {} }));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.message).toMatch(/unexpected frame kind/);
  });

  it("reports a request on a channel that is already open as fatal", () => {
    const { hostToAgent, fatal } = connect();
    const request = encodeJsonFrame(FrameKind.Request, 7, {
      op: "exec",
      args: { argv: ["sleep", "5"], stdin: true },
    });
    hostToAgent.write(Buffer.concat([request, request]));
    expect(fatal.map((e) => e.message)).toEqual(["channel 7 is already open"]);
    hostToAgent.write(encodeFrame(FrameKind.Cancel, 7));
  });

  it("reports the host closing its stream as fatal", async () => {
    const { hostToAgent, fatal } = connect();
    hostToAgent.end();
    await waitFor(() => fatal.length > 0, "the fatal event");
    expect(fatal[0]!.message).toMatch(/host channel closed/);
  });
});

/**
 * The agent driven with hand-built frames, for what the client cannot be made
 * to send: several frames in one chunk, as a real virtio-serial read returns them.
 */
function rawAgent() {
  const hostToAgent = new PassThrough();
  const agentToHost = new PassThrough();
  const server = new AgentServer(hostToAgent, agentToHost);
  const fatal: Error[] = [];
  server.on("fatal", (error: Error) => fatal.push(error));
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let waiters: Array<() => void> = [];
  agentToHost.on("data", (chunk: Buffer) => {
    frames.push(...decoder.push(chunk));
    const wake = waiters;
    waiters = [];
    for (const w of wake) w();
  });
  server.start();
  const raw = {
    fatal,
    frames,
    send(...parts: Buffer[]) {
      hostToAgent.write(Buffer.concat(parts));
    },
    /** The Response on `channel`, with the output sent on it before. */
    async response(channel: number) {
      for (;;) {
        const index = frames.findIndex(
          (f) => f.kind === FrameKind.Response && f.channel === channel,
        );
        if (index >= 0) {
          const before = frames.slice(0, index).filter((f) => f.channel === channel);
          const output = (stream: number) =>
            Buffer.concat(
              before
                .filter((f) => f.kind === FrameKind.Data && f.payload[0] === stream)
                .map((f) => f.payload.subarray(1)),
            );
          return {
            message: parseJsonPayload(frames[index]!.payload),
            stdout: output(Stream.Stdout),
            stderr: output(Stream.Stderr),
          };
        }
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    close() {
      hostToAgent.destroy();
      agentToHost.destroy();
    },
  };
  raws.push(raw);
  return raw;
}
const raws: Array<{ close(): void }> = [];
afterEach(() => {
  for (const raw of raws.splice(0)) raw.close();
});

function request(channel: number, op: string, args: Record<string, unknown>): Buffer {
  return encodeJsonFrame(FrameKind.Request, channel, { op, args });
}

describe("frames arriving together", () => {
  it("serves several requests sent in one chunk", async () => {
    const raw = rawAgent();
    raw.send(
      request(1, "hello", {}),
      request(2, "exec", { argv: ["echo", "two"] }),
      request(3, "exec", { argv: ["echo", "three"] }),
    );
    const [one, two, three] = await Promise.all([1, 2, 3].map((c) => raw.response(c)));
    expect(one!.message.ok).toBe(true);
    expect(two!.stdout.toString()).toBe("two\n");
    expect(three!.stdout.toString()).toBe("three\n");
    expect(raw.fatal).toEqual([]);
  });

  it("takes stdin sent in separate chunks after the Request", async () => {
    const raw = rawAgent();
    raw.send(request(1, "exec", { argv: ["cat"], stdin: true, timeout_ms: 5000 }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    raw.send(encodeDataFrame(1, Stream.Stdin, Buffer.from("hello")));
    raw.send(encodeEofFrame(1, Stream.Stdin));
    const { message, stdout } = await raw.response(1);
    expect(stdout.toString()).toBe("hello");
    expect(message.result).toMatchObject({ exit_code: 0, timed_out: false });
  });

  // Regression (fixed): the server starts handlers a microtask after
  // the Request (`Promise.resolve().then(handler)`), so Data/Eof/Cancel frames
  // decoded from the same chunk hit the no-op placeholder hooks and are lost.
  // Here cat never sees its input or EOF and is only ended by timeout_ms.
  it("delivers stdin that arrives in the same chunk as the Request", async () => {
    const raw = rawAgent();
    raw.send(
      request(1, "exec", { argv: ["cat"], stdin: true, timeout_ms: 1000 }),
      encodeDataFrame(1, Stream.Stdin, Buffer.from("hello")),
      encodeEofFrame(1, Stream.Stdin),
    );
    const { message, stdout } = await raw.response(1);
    expect(message.result).toMatchObject({ exit_code: 0, timed_out: false });
    expect(stdout.toString()).toBe("hello");
  });

  it("honours a Cancel that arrives in the same chunk as the Request", async () => {
    const raw = rawAgent();
    raw.send(
      request(1, "exec", { argv: ["sleep", "30"], timeout_ms: 1000 }),
      encodeFrame(FrameKind.Cancel, 1),
    );
    const { message } = await raw.response(1);
    expect(message.result).toMatchObject({ signal: "SIGKILL", timed_out: false });
  });

  // Regression (fixed): exec's finish() has no guard against running
  // more than once. For a spawn error it runs on "error" and again on each
  // pipe "close", re-sending "command not found" as Data frames after the
  // Response has already closed the channel.
  it("sends nothing on a channel after its Response", async () => {
    const raw = rawAgent();
    raw.send(request(1, "exec", { argv: ["pyro-no-such-command-xyz"] }));
    const { message, stderr } = await raw.response(1);
    expect(message.result).toMatchObject({ exit_code: 127 });
    expect(stderr.toString()).toBe("pyro-agent: pyro-no-such-command-xyz: command not found\n");
    // Let any stragglers through: another request round trip, then a short pause.
    raw.send(request(2, "hello", {}));
    await raw.response(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const responseAt = raw.frames.findIndex(
      (f) => f.kind === FrameKind.Response && f.channel === 1,
    );
    const after = raw.frames.slice(responseAt + 1).filter((f) => f.channel === 1);
    expect(after).toEqual([]);
  });
});
