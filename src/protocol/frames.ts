/**
 * Wire framing between the host and the guest agent, shared by both sides.
 *
 * A frame is an 11-byte header followed by a payload:
 *
 *   magic "PY" (2) | kind (1) | channel (u32 BE) | payload length (u32 BE) | payload
 *
 * Channels multiplex many requests over one virtio-serial port: the host opens
 * a channel with a Request frame, either side may then send Data and Eof
 * frames on it, and the agent closes it with exactly one Response frame.
 * The decoder is bounded: a payload longer than `maxPayload` or a bad magic is
 * a protocol error, raised before any allocation for the payload happens.
 */

export const FRAME_MAGIC = 0x5059; // "PY"
export const HEADER_BYTES = 11;
/** Largest payload either side will accept. Data is chunked well below this. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Data frames are cut to this size by the senders. */
export const DATA_CHUNK_BYTES = 64 * 1024;

export const FrameKind = {
  /** host → guest: JSON `{ op, args }` opening a channel. */
  Request: 1,
  /** guest → host: JSON `{ ok, result | error }`, closes the channel. */
  Response: 2,
  /** either way: one stream byte then raw bytes. */
  Data: 3,
  /** either way: one stream byte, the stream is finished. */
  Eof: 4,
  /** host → guest: abandon the channel (kill the command). Empty payload. */
  Cancel: 5,
  /** guest → host: JSON event not tied to a request (e.g. ready). Channel 0. */
  Event: 6,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

const KNOWN_KINDS = new Set<number>(Object.values(FrameKind));

/** Stream numbers carried in the first payload byte of Data and Eof frames. */
export const Stream = { Stdin: 0, Stdout: 1, Stderr: 2 } as const;
export type Stream = (typeof Stream)[keyof typeof Stream];

export interface Frame {
  kind: FrameKind;
  channel: number;
  payload: Buffer;
}

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

export function encodeFrame(kind: FrameKind, channel: number, payload: Buffer = EMPTY): Buffer {
  if (payload.length > MAX_PAYLOAD_BYTES) {
    throw new ProtocolError(
      `frame payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD_BYTES}`,
    );
  }
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt16BE(FRAME_MAGIC, 0);
  header.writeUInt8(kind, 2);
  header.writeUInt32BE(channel >>> 0, 3);
  header.writeUInt32BE(payload.length, 7);
  return payload.length === 0 ? header : Buffer.concat([header, payload]);
}

export function encodeJsonFrame(kind: FrameKind, channel: number, value: unknown): Buffer {
  return encodeFrame(kind, channel, Buffer.from(JSON.stringify(value), "utf8"));
}

export function encodeDataFrame(channel: number, stream: Stream, bytes: Buffer): Buffer {
  const payload = Buffer.allocUnsafe(1 + bytes.length);
  payload.writeUInt8(stream, 0);
  bytes.copy(payload, 1);
  return encodeFrame(FrameKind.Data, channel, payload);
}

export function encodeEofFrame(channel: number, stream: Stream): Buffer {
  return encodeFrame(FrameKind.Eof, channel, Buffer.from([stream]));
}

const EMPTY = Buffer.alloc(0);

/**
 * Incremental decoder: feed it chunks as they arrive, get whole frames back.
 * Holds at most one header plus one bounded payload in memory.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly maxPayload: number;

  constructor(options: { maxPayload?: number } = {}) {
    this.maxPayload = options.maxPayload ?? MAX_PAYLOAD_BYTES;
  }

  /** Returns the frames completed by `chunk`. Throws ProtocolError on bad input. */
  push(chunk: Buffer): Frame[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    while (this.buffered >= HEADER_BYTES) {
      const header = this.peek(HEADER_BYTES);
      const magic = header.readUInt16BE(0);
      if (magic !== FRAME_MAGIC) {
        throw new ProtocolError(`bad frame magic 0x${magic.toString(16).padStart(4, "0")}`);
      }
      const kind = header.readUInt8(2);
      if (!KNOWN_KINDS.has(kind)) throw new ProtocolError(`unknown frame kind ${kind}`);
      const length = header.readUInt32BE(7);
      if (length > this.maxPayload) {
        throw new ProtocolError(`frame payload of ${length} bytes exceeds ${this.maxPayload}`);
      }
      if (this.buffered < HEADER_BYTES + length) break;
      const whole = this.take(HEADER_BYTES + length);
      frames.push({
        kind: kind as FrameKind,
        channel: whole.readUInt32BE(3),
        payload: whole.subarray(HEADER_BYTES),
      });
    }
    return frames;
  }

  /** Bytes held that do not form a whole frame yet. */
  get pendingBytes(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    const first = this.chunks[0]!;
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}

/** Parse a JSON payload that must be an object; anything else is a protocol error. */
export function parseJsonPayload(payload: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString("utf8"));
  } catch {
    throw new ProtocolError("frame payload is not valid JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ProtocolError("frame payload is not a JSON object");
  }
  return value as Record<string, unknown>;
}

/** Split a Data/Eof payload into its stream number and bytes. */
export function parseStreamPayload(payload: Buffer): { stream: Stream; bytes: Buffer } {
  if (payload.length < 1) throw new ProtocolError("data frame without a stream byte");
  const stream = payload.readUInt8(0);
  if (stream > Stream.Stderr) throw new ProtocolError(`unknown stream ${stream}`);
  return { stream: stream as Stream, bytes: payload.subarray(1) };
}
