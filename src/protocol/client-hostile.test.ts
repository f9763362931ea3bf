/** The host client against a broken or hostile guest: every violation drops the connection. */
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { ErrorCodes, PyroError } from "../errors.js";
import {
  FRAME_MAGIC,
  FrameKind,
  HEADER_BYTES,
  MAX_PAYLOAD_BYTES,
  encodeFrame,
  encodeJsonFrame,
  parseStreamPayload,
} from "./frames.js";
import {
  expectProtocolErrorAndClosed,
  fakeGuest,
  rejection,
  settleWithin,
  useFakeGuests,
} from "./testing.js";

useFakeGuests();

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
