import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes, PyroError } from "../errors.js";
import {
  FRAME_MAGIC,
  FrameDecoder,
  FrameKind,
  HEADER_BYTES,
  MAX_PAYLOAD_BYTES,
  Stream,
  encodeDataFrame,
  encodeEofFrame,
  encodeFrame,
  encodeJsonFrame,
  parseJsonPayload,
  parseStreamPayload,
  type Frame,
} from "./frames.js";
import { OUTPUT_LIMITS } from "../limits.js";
import { AgentClient, BoundedBuffer } from "./client.js";

/**
 * A scripted "guest": the client reads what the guest writes to `toHost` and
 * writes to `toGuest`, whose frames the test inspects.
 */
class FakeGuest {
  readonly toHost = new PassThrough();
  readonly toGuest = new PassThrough();
  readonly client = new AgentClient(this.toHost, this.toGuest);
  readonly received: Frame[] = [];
  private readonly decoder = new FrameDecoder();
  private waiters: Array<() => void> = [];

  constructor() {
    this.toGuest.on("data", (chunk: Buffer) => {
      this.received.push(...this.decoder.push(chunk));
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    });
  }

  /** Wait until the client has sent a frame matching `predicate`. */
  async nextFrame(predicate: (frame: Frame) => boolean): Promise<Frame> {
    for (;;) {
      const found = this.received.find(predicate);
      if (found) return found;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Wait for the Request of `op` and return its channel and args. */
  async requestFor(op: string): Promise<{ channel: number; args: Record<string, unknown> }> {
    const frame = await this.nextFrame(
      (f) => f.kind === FrameKind.Request && parseJsonPayload(f.payload).op === op,
    );
    const message = parseJsonPayload(frame.payload);
    return { channel: frame.channel, args: message.args as Record<string, unknown> };
  }

  requests(): Array<{ channel: number; op: string; args: Record<string, unknown> }> {
    return this.received
      .filter((f) => f.kind === FrameKind.Request)
      .map((f) => {
        const m = parseJsonPayload(f.payload);
        return { channel: f.channel, op: m.op as string, args: m.args as Record<string, unknown> };
      });
  }

  send(bytes: Buffer): void {
    this.toHost.write(bytes);
  }

  respond(channel: number, result: Record<string, unknown>): void {
    this.send(encodeJsonFrame(FrameKind.Response, channel, { ok: true, result }));
  }

  data(channel: number, stream: Stream, bytes: Buffer | string): void {
    this.send(encodeDataFrame(channel, stream, Buffer.from(bytes)));
  }
}

const guests: FakeGuest[] = [];
function fakeGuest(): FakeGuest {
  const guest = new FakeGuest();
  guests.push(guest);
  return guest;
}
afterEach(() => {
  for (const guest of guests.splice(0)) guest.client.close();
});

function okExec(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    exit_code: 0,
    signal: null,
    timed_out: false,
    stdout_truncated: false,
    stderr_truncated: false,
    duration_ms: 5,
    ...extra,
  };
}

/** Await a promise expected to reject with a PyroError and return that error. */
async function rejection(promise: Promise<unknown>): Promise<PyroError> {
  const error = await promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PyroError);
  return error as PyroError;
}

/**
 * Settle `promise` or fail fast with a clear message: the bugs these tests
 * look for show up as requests that never settle.
 */
function settleWithin<T>(promise: Promise<T>, what: string, ms = 3000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} never settled`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

/**
 * Resolve once `promise` has settled, or reject if it has not settled by the
 * next turn of the event loop: used after the client has already closed, at
 * which point every pending request must have been rejected synchronously.
 */
function alreadySettled<T>(promise: Promise<T>, what: string): Promise<T> {
  const notYet = new Promise<never>((_, reject) =>
    setImmediate(() => reject(new Error(`${what} was left pending after the client closed`))),
  );
  return Promise.race([promise, notYet]);
}

async function expectProtocolErrorAndClosed(guest: FakeGuest, pending: Promise<unknown>) {
  pending.catch(() => {}); // observed below; avoid an unhandled rejection if we fail early
  if (!guest.client.closed) {
    await settleWithin(
      new Promise((resolve) => guest.client.onClose(resolve)),
      "closing the connection",
    );
  }
  const error = await rejection(alreadySettled(pending, "the in-flight request"));
  expect(error.code).toBe(ErrorCodes.GuestProtocolError);
  expect(error.hint).toMatch(/restart the VM/);
  expect(guest.client.closed).toBe(true);
  const later = await rejection(guest.client.hello());
  expect(later.code).toBe(ErrorCodes.GuestProtocolError);
  expect(guest.toGuest.destroyed).toBe(true);
  expect(guest.toHost.destroyed).toBe(true);
}

describe("AgentClient requests", () => {
  it("sends a Request frame and resolves with the Response result", async () => {
    const guest = fakeGuest();
    const hello = guest.client.hello();
    const { channel, args } = await guest.requestFor("hello");
    expect(args).toEqual({});
    expect(channel).toBeGreaterThan(0);
    guest.respond(channel, {
      protocol_version: 1,
      agent_version: "0.1.0",
      kernel_release: "6.1",
      uptime_seconds: 1,
    });
    await expect(hello).resolves.toMatchObject({ protocol_version: 1, kernel_release: "6.1" });
    expect(guest.client.closed).toBe(false);
  });

  it("maps an error Response by its declared code, keeping the guest's code", async () => {
    const guest = fakeGuest();
    const read = guest.client.readFile("/nope", 100);
    const { channel } = await guest.requestFor("read_file");
    guest.send(
      encodeJsonFrame(FrameKind.Response, channel, {
        ok: false,
        error: { code: "not_found", message: "/nope does not exist" },
      }),
    );
    const error = await rejection(read);
    expect(error.code).toBe(ErrorCodes.FileNotFound);
    expect(error.message).toBe("/nope does not exist");
    expect(error.details).toEqual({ guest_code: "not_found" });
    // An op failing is not a protocol failure: the connection stays usable.
    expect(guest.client.closed).toBe(false);
  });

  it("bounds the guest's error code and message", async () => {
    const guest = fakeGuest();
    const request = guest.client.hello();
    const { channel } = await guest.requestFor("hello");
    guest.send(
      encodeJsonFrame(FrameKind.Response, channel, {
        ok: false,
        error: { code: "c".repeat(1000), message: "m".repeat(100_000) },
      }),
    );
    const error = await rejection(request);
    expect(error.message.length).toBe(4096);
    // A code the protocol does not declare is never passed on as it came.
    expect(error.details).toEqual({ guest_code: "agent_error" });
  });

  it("fills in defaults for an error Response without code/message strings", async () => {
    const guest = fakeGuest();
    const request = guest.client.hello();
    const { channel } = await guest.requestFor("hello");
    guest.send(encodeJsonFrame(FrameKind.Response, channel, { ok: false, error: { code: 5 } }));
    const error = await rejection(request);
    expect(error.code).toBe(ErrorCodes.GuestError);
    expect(error.details).toEqual({ guest_code: "agent_error" });
    expect(error.message).toBe("unknown error");
  });

  it("matches many concurrent requests by channel, whatever the answer order", async () => {
    const guest = fakeGuest();
    const count = 50;
    const promises = Array.from({ length: count }, (_, i) =>
      guest.client.exec({ argv: ["echo", String(i)] }),
    );
    await guest.nextFrame(() => guest.requests().length === count);
    const requests = guest.requests();
    expect(new Set(requests.map((r) => r.channel)).size).toBe(count);
    // Answer in reverse order, with output interleaved across channels.
    for (const r of requests) guest.data(r.channel, Stream.Stdout, `out-${String(r.args.argv)}`);
    for (const r of [...requests].reverse()) {
      const i = Number((r.args.argv as string[])[1]);
      guest.respond(r.channel, okExec({ exit_code: i }));
    }
    const results = await Promise.all(promises);
    results.forEach((result, i) => {
      expect(result.exit_code).toBe(i);
      expect(result.stdout.toString()).toBe(`out-echo,${i}`);
    });
  });

  it("ignores a Response for an unknown channel", async () => {
    const guest = fakeGuest();
    const hello = guest.client.hello();
    const { channel } = await guest.requestFor("hello");
    guest.respond(channel + 1000, { stray: true });
    guest.data(channel + 1000, Stream.Stdout, "stray output");
    guest.respond(channel, { protocol_version: 1 });
    await expect(hello).resolves.toEqual({ protocol_version: 1 });
    expect(guest.client.closed).toBe(false);
  });

  it("ignores a second Response on an already answered channel", async () => {
    const guest = fakeGuest();
    const first = guest.client.hello();
    const { channel } = await guest.requestFor("hello");
    guest.respond(channel, { n: 1 });
    guest.respond(channel, { n: 2 });
    await expect(first).resolves.toEqual({ n: 1 });
    const second = guest.client.request("sync", {});
    const next = await guest.requestFor("sync");
    expect(next.channel).not.toBe(channel);
    guest.respond(next.channel, {});
    await expect(second).resolves.toEqual({});
  });

  it("accepts a ready Event and Eof frames without disturbing requests", async () => {
    const guest = fakeGuest();
    guest.send(encodeJsonFrame(FrameKind.Event, 0, { type: "ready", agent_version: "x" }));
    const exec = guest.client.exec({ argv: ["true"] });
    const { channel } = await guest.requestFor("exec");
    guest.send(encodeEofFrame(channel, Stream.Stdout));
    guest.respond(channel, okExec());
    await expect(exec).resolves.toMatchObject({ exit_code: 0 });
  });

  it("decodes frames that arrive byte by byte", async () => {
    const guest = fakeGuest();
    const exec = guest.client.exec({ argv: ["x"] });
    const { channel } = await guest.requestFor("exec");
    const bytes = Buffer.concat([
      encodeDataFrame(channel, Stream.Stdout, Buffer.from("hello ")),
      encodeDataFrame(channel, Stream.Stderr, Buffer.from("err")),
      encodeDataFrame(channel, Stream.Stdout, Buffer.from("world")),
      encodeJsonFrame(FrameKind.Response, channel, { ok: true, result: okExec() }),
    ]);
    for (const byte of bytes) guest.send(Buffer.from([byte]));
    const result = await exec;
    expect(result.stdout.toString()).toBe("hello world");
    expect(result.stderr.toString()).toBe("err");
  });

  it("sends input as Data frames followed by Eof, and tells the guest about stdin", async () => {
    const guest = fakeGuest();
    const input = Buffer.alloc(200 * 1024);
    for (let i = 0; i < input.length; i++) input[i] = i % 251;
    const exec = guest.client.exec({ argv: ["cat"] }, { input });
    const { channel, args } = await guest.requestFor("exec");
    expect(args.stdin).toBe(true);
    expect(args.max_output_bytes).toBe(OUTPUT_LIMITS.streamBytes);
    await guest.nextFrame((f) => f.kind === FrameKind.Eof && f.channel === channel);
    const data = guest.received.filter((f) => f.kind === FrameKind.Data && f.channel === channel);
    expect(data.length).toBeGreaterThan(1); // chunked
    const sent = Buffer.concat(data.map((f) => parseStreamPayload(f.payload).bytes));
    expect(sent.equals(input)).toBe(true);
    for (const f of data) expect(parseStreamPayload(f.payload).stream).toBe(Stream.Stdin);
    guest.respond(channel, okExec());
    await exec;
  });

  it("sends stdin: false without input", async () => {
    const guest = fakeGuest();
    const exec = guest.client.exec({ argv: ["true"], max_output_bytes: 10 });
    const { channel, args } = await guest.requestFor("exec");
    expect(args).toEqual({ argv: ["true"], max_output_bytes: 10, stdin: false });
    guest.respond(channel, okExec());
    await exec;
  });

  it("an AbortSignal sends Cancel and the request still resolves with the guest's answer", async () => {
    const guest = fakeGuest();
    const controller = new AbortController();
    const exec = guest.client.exec({ argv: ["sleep", "100"] }, { signal: controller.signal });
    const { channel } = await guest.requestFor("exec");
    controller.abort();
    await guest.nextFrame((f) => f.kind === FrameKind.Cancel && f.channel === channel);
    guest.respond(channel, okExec({ exit_code: 137, signal: "SIGKILL" }));
    await expect(exec).resolves.toMatchObject({ exit_code: 137, signal: "SIGKILL" });
  });

  it("an already aborted signal sends Cancel right after the Request", async () => {
    const guest = fakeGuest();
    const exec = guest.client.exec({ argv: ["x"] }, { signal: AbortSignal.abort() });
    const { channel } = await guest.requestFor("exec");
    await guest.nextFrame((f) => f.kind === FrameKind.Cancel && f.channel === channel);
    guest.respond(channel, okExec({ exit_code: 1 }));
    await exec;
  });

  it("readFile bounds the content host side even if the guest sends more", async () => {
    const guest = fakeGuest();
    const read = guest.client.readFile("/f", 4);
    const { channel, args } = await guest.requestFor("read_file");
    expect(args).toEqual({ path: "/f", max_bytes: 4 });
    guest.data(channel, Stream.Stdout, "abcdefgh");
    guest.respond(channel, { size: 8, truncated: false });
    const result = await read;
    expect(result.content.toString()).toBe("abcd");
    expect(result.truncated).toBe(true);
    expect(result.size).toBe(8);
  });

  it("tarOut hands every Data frame to the sink", async () => {
    const guest = fakeGuest();
    const chunks: Buffer[] = [];
    const tar = guest.client.tarOut("/work", (b) => chunks.push(Buffer.from(b)));
    const { channel } = await guest.requestFor("tar_out");
    guest.data(channel, Stream.Stdout, "one");
    guest.data(channel, Stream.Stdout, "two");
    guest.respond(channel, { bytes: 6 });
    await expect(tar).resolves.toEqual({ bytes: 6 });
    expect(Buffer.concat(chunks).toString()).toBe("onetwo");
  });
});

describe("AgentClient exec output bounds", () => {
  it("cuts output above max_output_bytes and marks it truncated though the guest does not", async () => {
    const guest = fakeGuest();
    const streamed: Buffer[] = [];
    const exec = guest.client.exec(
      { argv: ["yes"], max_output_bytes: 10 },
      { onStdout: (b) => streamed.push(Buffer.from(b)) },
    );
    const { channel, args } = await guest.requestFor("exec");
    expect(args.max_output_bytes).toBe(10);
    guest.data(channel, Stream.Stdout, "0123456");
    guest.data(channel, Stream.Stdout, "789abcdef");
    guest.data(channel, Stream.Stdout, "more and more");
    guest.data(channel, Stream.Stderr, "short");
    guest.respond(channel, okExec({ stdout_truncated: false, stderr_truncated: false }));
    const result = await exec;
    expect(result.stdout.toString()).toBe("0123456789");
    expect(result.stdout_truncated).toBe(true);
    expect(result.stderr.toString()).toBe("short");
    expect(result.stderr_truncated).toBe(false);
    // The callback only ever sees what was kept.
    expect(Buffer.concat(streamed).toString()).toBe("0123456789");
  });

  it("keeps the guest's own truncation flag", async () => {
    const guest = fakeGuest();
    const exec = guest.client.exec({ argv: ["x"] });
    const { channel } = await guest.requestFor("exec");
    guest.respond(channel, okExec({ stderr_truncated: true }));
    const result = await exec;
    expect(result.stderr_truncated).toBe(true);
    expect(result.stdout_truncated).toBe(false);
  });

  it("ignores stdin-stream Data from the guest", async () => {
    const guest = fakeGuest();
    const exec = guest.client.exec({ argv: ["x"] });
    const { channel } = await guest.requestFor("exec");
    guest.data(channel, Stream.Stdin, "sneaky");
    guest.respond(channel, okExec());
    const result = await exec;
    expect(result.stdout.length + result.stderr.length).toBe(0);
  });

  it.each([-1, 256, 1.5, "0", null, undefined, Number.NaN])(
    "rejects exit_code %s",
    async (exitCode) => {
      const guest = fakeGuest();
      const exec = guest.client.exec({ argv: ["x"] });
      const { channel } = await guest.requestFor("exec");
      guest.respond(channel, okExec({ exit_code: exitCode }));
      const error = await rejection(exec);
      expect(error.code).toBe(ErrorCodes.GuestProtocolError);
    },
  );

  it.each([0, 255])("accepts exit_code %i", async (exitCode) => {
    const guest = fakeGuest();
    const exec = guest.client.exec({ argv: ["x"] });
    const { channel } = await guest.requestFor("exec");
    guest.respond(channel, okExec({ exit_code: exitCode }));
    await expect(exec).resolves.toMatchObject({ exit_code: exitCode });
  });

  it("sanitises the rest of a hostile exec result", async () => {
    const guest = fakeGuest();
    const exec = guest.client.exec({ argv: ["x"] });
    const { channel } = await guest.requestFor("exec");
    guest.respond(channel, {
      exit_code: 1,
      signal: "S".repeat(1000),
      timed_out: "yes",
      duration_ms: "soon",
      extra: "ignored",
    });
    const result = await exec;
    expect(result.signal).toBe("S".repeat(32));
    expect(result.timed_out).toBe(false);
    expect(result.duration_ms).toBe(0);
    expect(result).not.toHaveProperty("extra");
  });
});

describe("AgentClient against a broken guest", () => {
  it("garbage bytes reject the in-flight request with guest_protocol_error and close", async () => {
    const guest = fakeGuest();
    const closeErrors: PyroError[] = [];
    guest.client.onClose((e) => closeErrors.push(e));
    const hello = guest.client.hello();
    await guest.requestFor("hello");
    guest.send(Buffer.from("this is not a frame at all"));
    await expectProtocolErrorAndClosed(guest, hello);
    expect(closeErrors).toHaveLength(1);
    expect(closeErrors[0]!.code).toBe(ErrorCodes.GuestProtocolError);
  });

  it("an oversized declared length fails from the header alone", async () => {
    const guest = fakeGuest();
    const hello = guest.client.hello();
    const { channel } = await guest.requestFor("hello");
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt16BE(FRAME_MAGIC, 0);
    header.writeUInt8(FrameKind.Data, 2);
    header.writeUInt32BE(channel, 3);
    header.writeUInt32BE(MAX_PAYLOAD_BYTES + 1, 7);
    guest.send(header); // no payload follows
    await expectProtocolErrorAndClosed(guest, hello);
  });

  it("malformed Response JSON", async () => {
    const guest = fakeGuest();
    const hello = guest.client.hello();
    const { channel } = await guest.requestFor("hello");
    guest.send(encodeFrame(FrameKind.Response, channel, Buffer.from("{ok: true")));
    await expectProtocolErrorAndClosed(guest, hello);
  });

  it("a Response that is not an object", async () => {
    const guest = fakeGuest();
    const hello = guest.client.hello();
    const { channel } = await guest.requestFor("hello");
    guest.send(encodeFrame(FrameKind.Response, channel, Buffer.from("[1,2,3]")));
    await expectProtocolErrorAndClosed(guest, hello);
  });

  it.each([
    ["ok with a non-object result", { ok: true, result: 42 }],
    ["ok with an array result", { ok: true, result: [1] }],
    ["ok without a result", { ok: true }],
    ["no ok at all", { result: {} }],
    ["ok false without an error object", { ok: false, error: "boom" }],
  ])("a Response with %s", async (_name, message) => {
    const guest = fakeGuest();
    const hello = guest.client.hello();
    const { channel } = await guest.requestFor("hello");
    guest.send(encodeJsonFrame(FrameKind.Response, channel, message));
    await expectProtocolErrorAndClosed(guest, hello);
  });

  it("a malformed Response also rejects the other requests in flight", async () => {
    const guest = fakeGuest();
    const a = guest.client.hello();
    const b = guest.client.exec({ argv: ["x"] });
    await guest.requestFor("exec");
    const { channel } = await guest.requestFor("hello");
    guest.send(encodeFrame(FrameKind.Response, channel, Buffer.from("nope")));
    await expectProtocolErrorAndClosed(guest, a);
    expect((await rejection(b)).code).toBe(ErrorCodes.GuestProtocolError);
  });

  it("a Data frame with an unknown stream", async () => {
    const guest = fakeGuest();
    const exec = guest.client.exec({ argv: ["x"] });
    const { channel } = await guest.requestFor("exec");
    guest.send(encodeFrame(FrameKind.Data, channel, Buffer.from([9, 1, 2])));
    await expectProtocolErrorAndClosed(guest, exec);
  });

  it("a Data frame without a stream byte", async () => {
    const guest = fakeGuest();
    const exec = guest.client.exec({ argv: ["x"] });
    const { channel } = await guest.requestFor("exec");
    guest.send(encodeFrame(FrameKind.Data, channel));
    await expectProtocolErrorAndClosed(guest, exec);
  });

  it.each([
    ["Request", FrameKind.Request],
    ["Cancel", FrameKind.Cancel],
  ])("a host-only %s frame from the guest", async (_name, kind) => {
    const guest = fakeGuest();
    const hello = guest.client.hello();
    await guest.requestFor("hello");
    guest.send(encodeJsonFrame(kind, 1, { op: "x", args: {} }));
    await expectProtocolErrorAndClosed(guest, hello);
  });

  it("an Event that is not JSON", async () => {
    const guest = fakeGuest();
    const hello = guest.client.hello();
    await guest.requestFor("hello");
    guest.send(encodeFrame(FrameKind.Event, 0, Buffer.from("ready!")));
    await expectProtocolErrorAndClosed(guest, hello);
  });

  it("bytes after the failure are ignored and nothing throws", async () => {
    const guest = fakeGuest();
    const hello = guest.client.hello();
    const { channel } = await guest.requestFor("hello");
    guest.send(Buffer.from("garbage-garbage"));
    await rejection(hello);
    // The stream is destroyed; writing more must not crash anything.
    expect(() =>
      guest.toHost.write(encodeJsonFrame(FrameKind.Response, channel, {})),
    ).not.toThrow();
    expect(guest.client.closed).toBe(true);
  });

  it("the guest closing the stream rejects pending requests with vm_died", async () => {
    const guest = fakeGuest();
    const closed = new Promise<PyroError>((resolve) => guest.client.onClose(resolve));
    const a = guest.client.hello();
    const b = guest.client.exec({ argv: ["sleep", "1"] });
    await guest.requestFor("exec");
    guest.toHost.end();
    const errorA = await rejection(settleWithin(a, "hello"));
    const errorB = await rejection(settleWithin(b, "exec"));
    expect(errorA.code).toBe(ErrorCodes.VmDied);
    expect(errorB.code).toBe(ErrorCodes.VmDied);
    expect((await closed).code).toBe(ErrorCodes.VmDied);
    expect(guest.client.closed).toBe(true);
    expect((await rejection(guest.client.hello())).code).toBe(ErrorCodes.VmDied);
  });

  it("a stream error rejects pending requests with vm_died", async () => {
    const guest = fakeGuest();
    const hello = guest.client.hello();
    await guest.requestFor("hello");
    guest.toHost.destroy(new Error("EIO"));
    const error = await rejection(settleWithin(hello, "hello"));
    expect(error.code).toBe(ErrorCodes.VmDied);
    expect(error.message).toMatch(/EIO/);
  });

  it("close() rejects pending requests with vm_died and is idempotent", async () => {
    const guest = fakeGuest();
    let closes = 0;
    guest.client.onClose(() => closes++);
    const hello = guest.client.hello();
    guest.client.close();
    guest.client.close();
    expect((await rejection(hello)).code).toBe(ErrorCodes.VmDied);
    expect(closes).toBe(1);
  });

  it("stops sending input once the connection is closed", async () => {
    const guest = fakeGuest();
    const input = new PassThrough();
    const exec = guest.client.exec({ argv: ["cat"] }, { input });
    const { channel } = await guest.requestFor("exec");
    input.write("first");
    await guest.nextFrame((f) => f.kind === FrameKind.Data && f.channel === channel);
    guest.client.close();
    input.write("second");
    input.end();
    expect((await rejection(exec)).code).toBe(ErrorCodes.VmDied);
    const data = guest.received.filter((f) => f.kind === FrameKind.Data);
    expect(data.map((f) => parseStreamPayload(f.payload).bytes.toString())).toEqual(["first"]);
  });

  it("an input stream error rejects the request", async () => {
    const guest = fakeGuest();
    const input = new PassThrough();
    const exec = guest.client.exec({ argv: ["cat"] }, { input });
    const { channel } = await guest.requestFor("exec");
    input.destroy(new Error("disk on fire"));
    await expect(settleWithin(exec, "exec")).rejects.toThrow(/disk on fire/);
    // ...and the guest is told to stop.
    await guest.nextFrame((f) => f.kind === FrameKind.Cancel && f.channel === channel);
  });
});

describe("BoundedBuffer", () => {
  it("keeps everything under the limit", () => {
    const buffer = new BoundedBuffer(10);
    expect(buffer.push(Buffer.from("abc")).toString()).toBe("abc");
    expect(buffer.push(Buffer.from("def")).toString()).toBe("def");
    expect(buffer.bytes().toString()).toBe("abcdef");
    expect(buffer.truncated).toBe(false);
  });

  it("keeps exactly the limit without marking truncation", () => {
    const buffer = new BoundedBuffer(4);
    buffer.push(Buffer.from("abcd"));
    expect(buffer.truncated).toBe(false);
    expect(buffer.push(Buffer.alloc(0)).length).toBe(0);
    expect(buffer.truncated).toBe(false);
    expect(buffer.bytes().toString()).toBe("abcd");
  });

  it("cuts the chunk that crosses the limit and drops the rest", () => {
    const buffer = new BoundedBuffer(5);
    expect(buffer.push(Buffer.from("abc")).toString()).toBe("abc");
    expect(buffer.push(Buffer.from("defgh")).toString()).toBe("de");
    expect(buffer.truncated).toBe(true);
    expect(buffer.push(Buffer.from("ijk")).length).toBe(0);
    expect(buffer.bytes().toString()).toBe("abcde");
  });

  it("marks truncation for bytes pushed after the limit was reached exactly", () => {
    const buffer = new BoundedBuffer(3);
    buffer.push(Buffer.from("abc"));
    expect(buffer.truncated).toBe(false);
    buffer.push(Buffer.from("d"));
    expect(buffer.truncated).toBe(true);
  });

  it("with a zero limit keeps nothing", () => {
    const buffer = new BoundedBuffer(0);
    expect(buffer.push(Buffer.from("x")).length).toBe(0);
    expect(buffer.truncated).toBe(true);
    expect(buffer.bytes().length).toBe(0);
  });

  it("copies what it keeps, so later mutation of the source does not leak in", () => {
    const buffer = new BoundedBuffer(10);
    const source = Buffer.from("hello");
    buffer.push(source);
    source.fill(0);
    expect(buffer.bytes().toString()).toBe("hello");
  });
});
