/** The host client against a scripted fake guest: requests, responses, output bounds. */
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors.js";
import {
  FrameKind,
  Stream,
  encodeDataFrame,
  encodeEofFrame,
  encodeJsonFrame,
  parseStreamPayload,
} from "./frames.js";
import { OUTPUT_LIMITS } from "../limits.js";
import { BoundedBuffer } from "./client.js";
import { fakeGuest, okExec, rejection, useFakeGuests } from "./testing.js";

useFakeGuests();

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
