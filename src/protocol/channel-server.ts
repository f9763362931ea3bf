/**
 * The serving side of the framed protocol, shared by the guest agent (ops
 * run in the VM) and the supervisor (ops relayed to the agent, plus its own
 * `pyro.*` ops). Independent of where its bytes come from: a virtio-serial
 * port, a unix socket, or pipes in unit tests.
 *
 * A Request frame opens a channel and runs the op's handler; Data, Eof and
 * Cancel frames on that channel reach the handler's hooks; the handler's
 * result (or OpError) closes the channel with exactly one Response.
 */
import { EventEmitter } from "node:events";
import type { Readable, Writable } from "node:stream";
import { OpError, WireCodes } from "./errors.js";
import {
  DATA_CHUNK_BYTES,
  FrameDecoder,
  FrameKind,
  ProtocolError,
  encodeDataFrame,
  encodeEofFrame,
  encodeJsonFrame,
  parseJsonPayload,
  parseStreamPayload,
  type Frame,
  type Stream,
} from "./frames.js";
import type { ResponseMessage } from "./messages.js";

/** Pause reading while this many bytes received wait to reach local sinks. */
const INPUT_HIGH_WATER = 8 * 1024 * 1024;

export interface ChannelContext {
  /** Send bytes to the peer on this channel; false means "wait for onDrain". */
  send(stream: Stream, bytes: Buffer): boolean;
  /** Send bytes, and resolve once the connection can take more (send, then onDrain if needed). */
  write(stream: Stream, bytes: Buffer): Promise<void>;
  sendEof(stream: Stream): void;
  onDrain(resume: () => void): void;
  /** Account bytes received that are not yet written locally (backpressure). */
  inputQueued(bytes: number): void;
  inputDone(bytes: number): void;
  /** Once the Response is written, end the connection and call `then`. */
  endAfterResponse(then: () => void): void;
}

/**
 * Callbacks a handler sets to receive the peer's frames on its channel.
 * Handlers must set them before their first `await`: frames that arrive
 * before that are otherwise dropped. onCancel also runs when the connection
 * goes away with the channel open.
 */
export interface ChannelHooks {
  onData(stream: Stream, bytes: Buffer): void;
  onEof(stream: Stream): void;
  onCancel(): void;
}

export type Handler = (
  args: Record<string, unknown>,
  ctx: ChannelContext,
  hooks: ChannelHooks,
) => Promise<unknown>;

export class ChannelServer extends EventEmitter {
  private readonly decoder = new FrameDecoder();
  private readonly channels = new Map<number, ChannelHooks>();
  private readonly afterResponse = new Map<number, () => void>();
  private pendingInput = 0;
  private readonly waitingForDrain = new Set<() => void>();

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly handlerFor: (op: string) => Handler | undefined,
    /** Who is on the other side, for messages: "host" for the agent, "client" for a supervisor. */
    private readonly peer = "peer",
  ) {
    super();
  }

  /** Start reading; `hello`, if given, is sent first as an Event frame. */
  start(hello?: Record<string, unknown>): void {
    this.output.on("drain", () => {
      const waiting = [...this.waitingForDrain];
      this.waitingForDrain.clear();
      for (const resume of waiting) resume();
    });
    this.input.on("data", (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.decoder.push(chunk);
      } catch (error) {
        this.emit("fatal", error);
        return;
      }
      for (const frame of frames) this.dispatch(frame);
    });
    this.input.on("error", (error) => this.emit("fatal", error));
    this.input.on("end", () => this.emit("fatal", new Error(`${this.peer} channel closed`)));
    this.input.on("close", () => this.cancelAll());
    this.output.on("error", (error) => this.emit("fatal", error));
    if (hello) this.write(encodeJsonFrame(FrameKind.Event, 0, hello));
  }

  /** Cancel every open channel (the peer went away). */
  cancelAll(): void {
    for (const hooks of this.channels.values()) hooks.onCancel();
  }

  private dispatch(frame: Frame): void {
    try {
      switch (frame.kind) {
        case FrameKind.Request:
          this.openChannel(frame.channel, parseJsonPayload(frame.payload));
          return;
        case FrameKind.Data: {
          const { stream, bytes } = parseStreamPayload(frame.payload);
          this.channels.get(frame.channel)?.onData(stream, bytes);
          return;
        }
        case FrameKind.Eof:
          this.channels.get(frame.channel)?.onEof(parseStreamPayload(frame.payload).stream);
          return;
        case FrameKind.Cancel:
          this.channels.get(frame.channel)?.onCancel();
          return;
        default:
          throw new ProtocolError(`unexpected frame kind ${frame.kind}`);
      }
    } catch (error) {
      this.emit("fatal", error);
    }
  }

  private openChannel(channel: number, message: Record<string, unknown>): void {
    if (this.channels.has(channel)) throw new ProtocolError(`channel ${channel} is already open`);
    const op = typeof message.op === "string" ? message.op : "";
    const args = (message.args ?? {}) as Record<string, unknown>;
    const handler = this.handlerFor(op);
    if (handler === undefined) {
      this.respond(channel, {
        ok: false,
        error: { code: WireCodes.UnknownOp, message: `unknown op ${op}` },
      });
      return;
    }
    const hooks: ChannelHooks = { onData: () => {}, onEof: () => {}, onCancel: () => {} };
    this.channels.set(channel, hooks);
    // Called synchronously: a handler installs its hooks before its first await,
    // so Data/Eof/Cancel frames that follow the Request in the same read reach it.
    let pending: Promise<unknown>;
    try {
      pending = handler(args, this.contextFor(channel), hooks);
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (result) => this.respond(channel, { ok: true, result: result as Record<string, unknown> }),
      (error: unknown) =>
        this.respond(channel, {
          ok: false,
          error: {
            code: error instanceof OpError ? error.code : WireCodes.AgentError,
            message: error instanceof Error ? error.message : String(error),
          },
        }),
    );
  }

  private respond(channel: number, message: ResponseMessage): void {
    this.channels.delete(channel);
    this.write(encodeJsonFrame(FrameKind.Response, channel, message));
    const then = this.afterResponse.get(channel);
    if (then) {
      this.afterResponse.delete(channel);
      if (this.output.destroyed) then();
      else this.output.end(then);
    }
  }

  private contextFor(channel: number): ChannelContext {
    const send = (stream: Stream, bytes: Buffer): boolean => {
      let ok = true;
      for (let offset = 0; offset < bytes.length; offset += DATA_CHUNK_BYTES) {
        const piece = bytes.subarray(offset, offset + DATA_CHUNK_BYTES);
        ok = this.write(encodeDataFrame(channel, stream, piece));
      }
      return ok;
    };
    return {
      send,
      write: async (stream, bytes) => {
        if (!send(stream, bytes)) {
          await new Promise<void>((resume) => this.waitingForDrain.add(resume));
        }
      },
      sendEof: (stream) => this.write(encodeEofFrame(channel, stream)),
      onDrain: (resume) => {
        this.waitingForDrain.add(resume);
      },
      inputQueued: (bytes) => {
        this.pendingInput += bytes;
        if (this.pendingInput > INPUT_HIGH_WATER) this.input.pause();
      },
      inputDone: (bytes) => {
        this.pendingInput -= bytes;
        if (this.pendingInput <= INPUT_HIGH_WATER / 4 && this.input.isPaused()) this.input.resume();
      },
      endAfterResponse: (then) => this.afterResponse.set(channel, then),
    };
  }

  private write(frame: Buffer): boolean {
    if (this.output.writableEnded || this.output.destroyed) return false;
    return this.output.write(frame);
  }
}
