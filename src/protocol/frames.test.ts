import { describe, expect, it } from "vitest";
import {
  DATA_CHUNK_BYTES,
  FRAME_MAGIC,
  FrameDecoder,
  FrameKind,
  HEADER_BYTES,
  MAX_PAYLOAD_BYTES,
  ProtocolError,
  Stream,
  encodeDataFrame,
  encodeEofFrame,
  encodeFrame,
  encodeJsonFrame,
  parseJsonPayload,
  parseStreamPayload,
  type Frame,
} from "./frames.js";

/** A raw header, for hand-crafting frames the encoder would refuse to build. */
function rawHeader(magic: number, kind: number, channel: number, length: number): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt16BE(magic, 0);
  header.writeUInt8(kind, 2);
  header.writeUInt32BE(channel, 3);
  header.writeUInt32BE(length, 7);
  return header;
}

function decodeAll(bytes: Buffer, decoder = new FrameDecoder()): Frame[] {
  return decoder.push(bytes);
}

describe("constants", () => {
  it("match the documented wire format", () => {
    expect(HEADER_BYTES).toBe(11);
    expect(FRAME_MAGIC).toBe(0x5059);
    expect(Buffer.from("PY").readUInt16BE(0)).toBe(FRAME_MAGIC);
    expect(DATA_CHUNK_BYTES).toBeLessThan(MAX_PAYLOAD_BYTES);
  });
});

describe("encodeFrame", () => {
  it("writes magic, kind, channel and length big-endian", () => {
    const frame = encodeFrame(FrameKind.Data, 0x01020304, Buffer.from([9, 8, 7]));
    expect([...frame]).toEqual([0x50, 0x59, 3, 1, 2, 3, 4, 0, 0, 0, 3, 9, 8, 7]);
  });

  it("encodes an empty payload as a bare header", () => {
    const frame = encodeFrame(FrameKind.Cancel, 7);
    expect(frame.length).toBe(HEADER_BYTES);
    expect(frame.readUInt32BE(7)).toBe(0);
  });

  it("accepts a payload of exactly the maximum size", () => {
    const frame = encodeFrame(FrameKind.Data, 1, Buffer.alloc(MAX_PAYLOAD_BYTES));
    expect(frame.length).toBe(HEADER_BYTES + MAX_PAYLOAD_BYTES);
  });

  it("refuses a payload above the maximum", () => {
    expect(() => encodeFrame(FrameKind.Data, 1, Buffer.alloc(MAX_PAYLOAD_BYTES + 1))).toThrow(
      ProtocolError,
    );
    expect(() => encodeDataFrame(1, Stream.Stdout, Buffer.alloc(MAX_PAYLOAD_BYTES))).toThrow(
      ProtocolError,
    );
    expect(() =>
      encodeJsonFrame(FrameKind.Request, 1, { blob: "x".repeat(MAX_PAYLOAD_BYTES) }),
    ).toThrow(ProtocolError);
  });
});

describe("FrameDecoder round trip", () => {
  const cases: Array<[string, Buffer, FrameKind, number, Buffer]> = [
    [
      "Request",
      encodeJsonFrame(FrameKind.Request, 1, { op: "hello", args: {} }),
      FrameKind.Request,
      1,
      Buffer.from(JSON.stringify({ op: "hello", args: {} })),
    ],
    [
      "Response",
      encodeJsonFrame(FrameKind.Response, 2, { ok: true, result: { a: 1 } }),
      FrameKind.Response,
      2,
      Buffer.from(JSON.stringify({ ok: true, result: { a: 1 } })),
    ],
    [
      "Data",
      encodeDataFrame(3, Stream.Stderr, Buffer.from([0, 255, 10])),
      FrameKind.Data,
      3,
      Buffer.from([Stream.Stderr, 0, 255, 10]),
    ],
    ["Eof", encodeEofFrame(4, Stream.Stdin), FrameKind.Eof, 4, Buffer.from([Stream.Stdin])],
    ["Cancel", encodeFrame(FrameKind.Cancel, 5), FrameKind.Cancel, 5, Buffer.alloc(0)],
    [
      "Event",
      encodeJsonFrame(FrameKind.Event, 0, { type: "ready", agent_version: "x" }),
      FrameKind.Event,
      0,
      Buffer.from(JSON.stringify({ type: "ready", agent_version: "x" })),
    ],
  ];

  it.each(cases)("%s", (_name, encoded, kind, channel, payload) => {
    const decoder = new FrameDecoder();
    const frames = decoder.push(encoded);
    expect(frames).toHaveLength(1);
    expect(frames[0]!.kind).toBe(kind);
    expect(frames[0]!.channel).toBe(channel);
    expect(Buffer.compare(frames[0]!.payload, payload)).toBe(0);
    expect(decoder.pendingBytes).toBe(0);
  });

  it("covers every frame kind", () => {
    expect(new Set(cases.map((c) => c[2]))).toEqual(new Set(Object.values(FrameKind)));
  });

  it("keeps the full u32 channel range", () => {
    const [frame] = decodeAll(encodeFrame(FrameKind.Cancel, 0xffffffff));
    expect(frame!.channel).toBe(0xffffffff);
  });

  it("round-trips a maximum-size payload", () => {
    const payload = Buffer.alloc(MAX_PAYLOAD_BYTES, 0xab);
    const [frame] = decodeAll(encodeFrame(FrameKind.Data, 1, payload));
    expect(frame!.payload.length).toBe(MAX_PAYLOAD_BYTES);
    expect(frame!.payload.equals(payload)).toBe(true);
  });

  it("JSON frames parse back to the same value", () => {
    const value = { op: "exec", args: { argv: ["echo", "héllo ✓"] } };
    const [frame] = decodeAll(encodeJsonFrame(FrameKind.Request, 9, value));
    expect(parseJsonPayload(frame!.payload)).toEqual(value);
  });

  it("data frames parse back to stream and bytes", () => {
    const bytes = Buffer.from([1, 2, 3, 0, 255]);
    const [frame] = decodeAll(encodeDataFrame(9, Stream.Stdout, bytes));
    const parsed = parseStreamPayload(frame!.payload);
    expect(parsed.stream).toBe(Stream.Stdout);
    expect(parsed.bytes.equals(bytes)).toBe(true);
  });
});

describe("FrameDecoder chunking", () => {
  const stream = Buffer.concat([
    encodeJsonFrame(FrameKind.Request, 1, { op: "exec", args: { argv: ["true"] } }),
    encodeDataFrame(1, Stream.Stdin, Buffer.from("some stdin bytes")),
    encodeEofFrame(1, Stream.Stdin),
    encodeFrame(FrameKind.Cancel, 1),
    encodeDataFrame(2, Stream.Stdout, Buffer.alloc(1000, 7)),
    encodeJsonFrame(FrameKind.Response, 2, { ok: true, result: {} }),
  ]);
  const expected = new FrameDecoder().push(stream);

  function summary(frames: Frame[]) {
    return frames.map((f) => ({
      kind: f.kind,
      channel: f.channel,
      payload: f.payload.toString("hex"),
    }));
  }

  it("decodes several frames from one chunk", () => {
    expect(expected.map((f) => f.kind)).toEqual([
      FrameKind.Request,
      FrameKind.Data,
      FrameKind.Eof,
      FrameKind.Cancel,
      FrameKind.Data,
      FrameKind.Response,
    ]);
  });

  it("decodes the same frames when fed byte by byte", () => {
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    for (let i = 0; i < stream.length; i++) {
      frames.push(...decoder.push(stream.subarray(i, i + 1)));
    }
    expect(summary(frames)).toEqual(summary(expected));
    expect(decoder.pendingBytes).toBe(0);
  });

  it("decodes the same frames for every two-way split", () => {
    for (let cut = 0; cut <= stream.length; cut += 7) {
      const decoder = new FrameDecoder();
      const frames = [
        ...decoder.push(stream.subarray(0, cut)),
        ...decoder.push(stream.subarray(cut)),
      ];
      expect(summary(frames)).toEqual(summary(expected));
    }
  });

  it("decodes with irregular chunk sizes", () => {
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    const sizes = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610];
    let offset = 0;
    for (let i = 0; offset < stream.length; i++) {
      const size = sizes[i % sizes.length]!;
      frames.push(...decoder.push(stream.subarray(offset, offset + size)));
      offset += size;
    }
    expect(summary(frames)).toEqual(summary(expected));
  });

  it("holds a partial frame until it is complete", () => {
    const frame = encodeDataFrame(5, Stream.Stdout, Buffer.from("hello"));
    const decoder = new FrameDecoder();
    expect(decoder.push(frame.subarray(0, 5))).toEqual([]);
    expect(decoder.pendingBytes).toBe(5);
    expect(decoder.push(frame.subarray(5, HEADER_BYTES + 2))).toEqual([]);
    expect(decoder.pendingBytes).toBe(HEADER_BYTES + 2);
    const frames = decoder.push(frame.subarray(HEADER_BYTES + 2));
    expect(frames).toHaveLength(1);
    expect(parseStreamPayload(frames[0]!.payload).bytes.toString()).toBe("hello");
    expect(decoder.pendingBytes).toBe(0);
  });

  it("returns complete frames and keeps the tail of a chunk", () => {
    const a = encodeDataFrame(1, Stream.Stdout, Buffer.from("a"));
    const b = encodeDataFrame(2, Stream.Stdout, Buffer.from("bb"));
    const decoder = new FrameDecoder();
    const first = decoder.push(Buffer.concat([a, b.subarray(0, 4)]));
    expect(first.map((f) => f.channel)).toEqual([1]);
    expect(decoder.pendingBytes).toBe(4);
    const second = decoder.push(b.subarray(4));
    expect(second.map((f) => f.channel)).toEqual([2]);
  });

  it("ignores empty chunks", () => {
    const decoder = new FrameDecoder();
    expect(decoder.push(Buffer.alloc(0))).toEqual([]);
    expect(decoder.pendingBytes).toBe(0);
  });

  it("returned payloads are not corrupted by later pushes", () => {
    const decoder = new FrameDecoder();
    const chunk = Buffer.concat([
      encodeDataFrame(1, Stream.Stdout, Buffer.from("first")),
      encodeDataFrame(2, Stream.Stdout, Buffer.from("sec")),
    ]);
    const [one] = decoder.push(chunk.subarray(0, chunk.length - 1));
    decoder.push(chunk.subarray(chunk.length - 1));
    expect(parseStreamPayload(one!.payload).bytes.toString()).toBe("first");
  });
});

describe("FrameDecoder rejects bad input", () => {
  it("bad magic", () => {
    const decoder = new FrameDecoder();
    const bad = rawHeader(0x4142, FrameKind.Data, 1, 0);
    expect(() => decoder.push(bad)).toThrow(ProtocolError);
    expect(() => new FrameDecoder().push(bad)).toThrow(/magic 0x4142/);
  });

  it("bad magic after a good frame", () => {
    const decoder = new FrameDecoder();
    const good = encodeFrame(FrameKind.Cancel, 1);
    expect(() => decoder.push(Buffer.concat([good, Buffer.from("garbage garbage")]))).toThrow(
      ProtocolError,
    );
  });

  it("garbage text", () => {
    expect(() => new FrameDecoder().push(Buffer.from("HTTP/1.1 200 OK\r\n\r\n"))).toThrow(
      ProtocolError,
    );
  });

  it.each([0, 7, 200, 255])("unknown kind %i", (kind) => {
    expect(() => new FrameDecoder().push(rawHeader(FRAME_MAGIC, kind, 1, 0))).toThrow(
      /unknown frame kind/,
    );
  });

  it("a declared payload above the maximum, from the header alone", () => {
    const decoder = new FrameDecoder();
    // Only the header: the decoder must not wait for (or allocate) 4 GiB.
    expect(() => decoder.push(rawHeader(FRAME_MAGIC, FrameKind.Data, 1, 0xffffffff))).toThrow(
      ProtocolError,
    );
    expect(() =>
      new FrameDecoder().push(rawHeader(FRAME_MAGIC, FrameKind.Data, 1, MAX_PAYLOAD_BYTES + 1)),
    ).toThrow(/exceeds/);
  });

  it("an oversized header split across chunks throws once the header is complete", () => {
    const decoder = new FrameDecoder();
    const header = rawHeader(FRAME_MAGIC, FrameKind.Response, 1, MAX_PAYLOAD_BYTES + 1);
    expect(decoder.push(header.subarray(0, HEADER_BYTES - 1))).toEqual([]);
    expect(() => decoder.push(header.subarray(HEADER_BYTES - 1))).toThrow(ProtocolError);
  });

  it("accepts a declared length of exactly the maximum (and waits for it)", () => {
    const decoder = new FrameDecoder();
    expect(decoder.push(rawHeader(FRAME_MAGIC, FrameKind.Data, 1, MAX_PAYLOAD_BYTES))).toEqual([]);
    expect(decoder.pendingBytes).toBe(HEADER_BYTES);
  });

  it("honours a custom maxPayload", () => {
    const decoder = new FrameDecoder({ maxPayload: 16 });
    const ok = decoder.push(encodeFrame(FrameKind.Data, 1, Buffer.alloc(16, 1)));
    expect(ok).toHaveLength(1);
    expect(() => decoder.push(rawHeader(FRAME_MAGIC, FrameKind.Data, 1, 17))).toThrow(/exceeds 16/);
  });

  it("a custom maxPayload of zero allows only empty payloads", () => {
    const decoder = new FrameDecoder({ maxPayload: 0 });
    expect(decoder.push(encodeFrame(FrameKind.Cancel, 1))).toHaveLength(1);
    expect(() => decoder.push(encodeEofFrame(1, Stream.Stdin))).toThrow(ProtocolError);
  });
});

describe("parseJsonPayload", () => {
  it("returns objects", () => {
    expect(parseJsonPayload(Buffer.from('{"a":[1,2],"b":null}'))).toEqual({ a: [1, 2], b: null });
  });

  it.each(["", "{", "not json", '{"a":1', "\xff\xfe"])("rejects invalid JSON %j", (text) => {
    expect(() => parseJsonPayload(Buffer.from(text, "latin1"))).toThrow(ProtocolError);
    expect(() => parseJsonPayload(Buffer.from(text, "latin1"))).toThrow(/not valid JSON/);
  });

  it.each(["null", "[]", "[1]", "1", '"x"', "true"])("rejects non-object %s", (text) => {
    expect(() => parseJsonPayload(Buffer.from(text))).toThrow(/not a JSON object/);
  });
});

describe("parseStreamPayload", () => {
  it("rejects an empty payload", () => {
    expect(() => parseStreamPayload(Buffer.alloc(0))).toThrow(ProtocolError);
  });

  it.each([3, 4, 255])("rejects unknown stream %i", (stream) => {
    expect(() => parseStreamPayload(Buffer.from([stream, 1, 2]))).toThrow(/unknown stream/);
  });

  it.each([Stream.Stdin, Stream.Stdout, Stream.Stderr])("accepts stream %i", (stream) => {
    const parsed = parseStreamPayload(Buffer.from([stream]));
    expect(parsed.stream).toBe(stream);
    expect(parsed.bytes.length).toBe(0);
  });
});
