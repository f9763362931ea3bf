/**
 * The agent's protocol server, independent of where its bytes come from so
 * the same code runs in the guest (virtio-serial) and in unit tests (pipes).
 */
import { EventEmitter } from "node:events";
import type { Readable, Writable } from "node:stream";
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
} from "../../protocol/frames.js";
import type { ResponseMessage } from "../../protocol/messages.js";
import { OpError, handlers, type ChannelContext, type Handler } from "./handlers.js";
import { VERSION as AGENT_VERSION } from "../../version.js";

/** Pause reading from the host while this many bytes wait to reach local sinks. */
const INPUT_HIGH_WATER = 8 * 1024 * 1024;

interface OpenChannel {
  onData(stream: Stream, bytes: Buffer): void;
  onEof(stream: Stream): void;
  onCancel(): void;
}

export class AgentServer extends EventEmitter {
  private readonly decoder = new FrameDecoder();
  private readonly channels = new Map<number, OpenChannel>();
  private pendingInput = 0;
  private waitingForDrain = new Set<() => void>();

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
  ) {
    super();
  }

  start(): void {
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
    this.input.on("end", () => this.emit("fatal", new Error("host channel closed")));
    this.output.on("error", (error) => this.emit("fatal", error));
    this.write(
      encodeJsonFrame(FrameKind.Event, 0, { type: "ready", agent_version: AGENT_VERSION }),
    );
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
          throw new ProtocolError(`unexpected frame kind ${frame.kind} from host`);
      }
    } catch (error) {
      this.emit("fatal", error);
    }
  }

  private openChannel(channel: number, message: Record<string, unknown>): void {
    if (this.channels.has(channel)) throw new ProtocolError(`channel ${channel} is already open`);
    const op = typeof message.op === "string" ? message.op : "";
    const args = (message.args ?? {}) as Record<string, unknown>;
    const handler: Handler | undefined = Object.hasOwn(handlers, op) ? handlers[op] : undefined;
    if (handler === undefined) {
      this.respond(channel, {
        ok: false,
        error: { code: "unknown_op", message: `unknown op ${op}` },
      });
      return;
    }
    const ctx = this.contextFor(channel);
    const channelState: OpenChannel = { onData: () => {}, onEof: () => {}, onCancel: () => {} };
    this.channels.set(channel, channelState);
    // Called synchronously: a handler installs its hooks before its first await,
    // so Data/Eof/Cancel frames that follow the Request in the same read reach it.
    let pending: Promise<unknown>;
    try {
      pending = handler(args, ctx, channelState);
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (result) => this.respond(channel, { ok: true, result: result as Record<string, unknown> }),
      (error: unknown) =>
        this.respond(channel, {
          ok: false,
          error: {
            code: error instanceof OpError ? error.code : "agent_error",
            message: error instanceof Error ? error.message : String(error),
          },
        }),
    );
  }

  private respond(channel: number, message: ResponseMessage): void {
    this.channels.delete(channel);
    this.write(encodeJsonFrame(FrameKind.Response, channel, message));
  }

  private contextFor(channel: number): ChannelContext {
    return {
      send: (stream, bytes) => {
        let ok = true;
        for (let offset = 0; offset < bytes.length; offset += DATA_CHUNK_BYTES) {
          const piece = bytes.subarray(offset, offset + DATA_CHUNK_BYTES);
          ok = this.write(encodeDataFrame(channel, stream, piece));
        }
        return ok;
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
    };
  }

  private write(frame: Buffer): boolean {
    return this.output.write(frame);
  }
}
