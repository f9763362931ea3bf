/**
 * Host side of the agent protocol: one connection to one guest, many requests
 * in flight. Everything the guest sends is untrusted: frames are bounded by
 * the decoder, collected output is bounded here again, and any protocol
 * violation drops the connection with a guest_protocol_error.
 */
import net from "node:net";
import type { Readable, Writable } from "node:stream";
import { ErrorCodes, PyroError } from "../errors.js";
import {
  DATA_CHUNK_BYTES,
  FrameDecoder,
  FrameKind,
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
import type {
  DirEntry,
  ExecArgs,
  ExecResult,
  HelloResult,
  OpArgs,
  OpName,
  OpResult,
  ReadFileResult,
  ShellReadArgs,
  ShellReadResult,
  TarResult,
  WriteFileResult,
} from "./messages.js";
import { DEFAULTS, OUTPUT_LIMITS } from "../limits.js";
import { WireCodes, wireCode } from "./errors.js";

export interface RequestOptions {
  /** Called with each Data frame the guest sends on this channel. */
  onData?: (stream: Stream, bytes: Buffer) => void;
  /** Bytes to send as stdin (stream 0), followed by Eof. */
  input?: Readable | Buffer;
  /** Abort: sends Cancel to the guest; the request still resolves with the guest's answer. */
  signal?: AbortSignal;
}

export interface ExecOutput extends ExecResult {
  stdout: Buffer;
  stderr: Buffer;
}

export interface ExecOptions {
  onStdout?: (bytes: Buffer) => void;
  onStderr?: (bytes: Buffer) => void;
  signal?: AbortSignal;
  input?: Readable | Buffer;
}

interface Pending {
  resolve(result: Record<string, unknown>): void;
  reject(error: Error): void;
  onData: ((stream: Stream, bytes: Buffer) => void) | undefined;
}

export class AgentClient {
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<number, Pending>();
  private nextChannel = 1;
  private closedError: PyroError | undefined;
  private readonly closeListeners = new Set<(error: PyroError) => void>();

  constructor(
    private readonly input: Readable,
    private readonly output: Writable & { destroy(): void },
  ) {
    input.on("data", (chunk: Buffer) => this.onChunk(chunk));
    input.on("error", (error) => this.fail(this.died(error.message)));
    input.on("close", () => this.fail(this.died("the guest agent connection closed")));
    output.on("error", (error) => this.fail(this.died(error.message)));
  }

  /** Connect to a unix socket (QEMU's chardev for the agent port). */
  static async connectUnix(socketPath: string): Promise<AgentClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(socketPath);
      s.once("connect", () => resolve(s));
      s.once("error", reject);
    });
    socket.removeAllListeners("error");
    return new AgentClient(socket, socket);
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  onClose(listener: (error: PyroError) => void): void {
    this.closeListeners.add(listener);
  }

  close(): void {
    this.fail(new PyroError(ErrorCodes.VmDied, "the agent connection was closed"));
  }

  async request<K extends OpName>(
    op: K,
    args: OpArgs<K>,
    options: RequestOptions = {},
  ): Promise<OpResult<K>> {
    return (await this.call(op, args as Record<string, unknown>, options)) as OpResult<K>;
  }

  /** Untyped request: any op, the raw result object. Used by the supervisor's relay. */
  async call(
    op: string,
    args: Record<string, unknown>,
    options: RequestOptions = {},
  ): Promise<Record<string, unknown>> {
    if (this.closedError) throw this.closedError;
    const channel = this.nextChannel;
    this.nextChannel = this.nextChannel >= 0xffff_fff0 ? 1 : this.nextChannel + 1;
    const result = new Promise<Record<string, unknown>>((resolve, reject) => {
      this.pending.set(channel, { resolve, reject, onData: options.onData });
    });
    this.output.write(encodeJsonFrame(FrameKind.Request, channel, { op, args }));
    const onAbort = () => {
      if (this.pending.has(channel) && !this.closed) {
        this.output.write(encodeFrame(FrameKind.Cancel, channel));
      }
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    if (options.input !== undefined) {
      void this.sendInput(channel, options.input).catch((error: unknown) => {
        this.pending
          .get(channel)
          ?.reject(error instanceof Error ? error : new Error(String(error)));
        onAbort();
      });
    }
    try {
      return await result;
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  hello(): Promise<HelloResult> {
    return this.request("hello", {});
  }

  /** Run a command, streaming output to the callbacks and collecting it, both bounded. */
  async exec(args: ExecArgs, options: ExecOptions = {}): Promise<ExecOutput> {
    const limit = args.max_output_bytes ?? OUTPUT_LIMITS.streamBytes;
    const collected = {
      [Stream.Stdout]: new BoundedBuffer(limit),
      [Stream.Stderr]: new BoundedBuffer(limit),
    };
    const result = await this.request(
      "exec",
      { ...args, max_output_bytes: limit, stdin: options.input !== undefined },
      {
        signal: options.signal,
        input: options.input,
        onData: (stream, bytes) => {
          if (stream === Stream.Stdin) return;
          const accepted = collected[stream].push(bytes);
          if (accepted.length > 0) {
            (stream === Stream.Stdout ? options.onStdout : options.onStderr)?.(accepted);
          }
        },
      },
    );
    return {
      ...validateExecResult(result as unknown as Record<string, unknown>),
      stdout: collected[Stream.Stdout].bytes(),
      stderr: collected[Stream.Stderr].bytes(),
      stdout_truncated: result.stdout_truncated === true || collected[Stream.Stdout].truncated,
      stderr_truncated: result.stderr_truncated === true || collected[Stream.Stderr].truncated,
    };
  }

  async readFile(
    path: string,
    maxBytes: number,
    scope?: string,
  ): Promise<ReadFileResult & { content: Buffer; mode: number }> {
    const content = new BoundedBuffer(maxBytes);
    const result = await this.request(
      "read_file",
      { path, max_bytes: maxBytes, ...(scope ? { scope } : {}) },
      { onData: (_stream, bytes) => content.push(bytes) },
    );
    const size = Number(result.size);
    return {
      size: Number.isSafeInteger(size) && size >= 0 ? size : 0,
      mode: typeof result.mode === "number" ? result.mode & 0o7777 : 0o644,
      truncated: result.truncated === true || content.truncated,
      content: content.bytes(),
    };
  }

  /** A shell read: the result, with the text the agent streamed (bounded: 4 bytes a character at most). */
  async shellRead(args: ShellReadArgs): Promise<ShellReadResult & { text: string }> {
    const text = new BoundedBuffer((args.max_chars ?? DEFAULTS.shellMaxChars) * 4);
    const result = await this.request("shell_read", args, {
      onData: (_stream, bytes) => text.push(bytes),
    });
    return { ...result, text: text.bytes().toString("utf8") };
  }

  writeFile(
    path: string,
    content: Buffer | Readable,
    options: { mode?: number; parents?: boolean; scope?: string } = {},
  ): Promise<WriteFileResult> {
    return this.request("write_file", { path, ...options }, { input: content });
  }

  /** Stream a guest directory (or file) out as a tar archive into `sink` (which must bound what it keeps). */
  tarOut(path: string, sink: (bytes: Buffer) => void, scope?: string): Promise<TarResult> {
    return this.request(
      "tar_out",
      { path, ...(scope ? { scope } : {}) },
      { onData: (_stream, bytes) => sink(bytes) },
    );
  }

  tarIn(path: string, archive: Readable | Buffer, scope?: string): Promise<TarResult> {
    return this.request("tar_in", { path, ...(scope ? { scope } : {}) }, { input: archive });
  }

  /** A directory listing, bounded: at most `maxEntries` entries, lines of at most 64 KiB. */
  async listDir(
    path: string,
    options: { recursive?: boolean; maxEntries?: number; scope?: string } = {},
  ): Promise<{ entries: DirEntry[]; truncated: boolean }> {
    const maxEntries = options.maxEntries ?? 10_000;
    const entries: DirEntry[] = [];
    let partial = "";
    let overflow = false;
    const result = await this.request(
      "list_dir",
      {
        path,
        recursive: options.recursive ?? false,
        max_entries: maxEntries,
        ...(options.scope ? { scope: options.scope } : {}),
      },
      {
        onData: (_stream, bytes) => {
          partial += bytes.toString("utf8");
          const lines = partial.split("\n");
          partial = lines.pop() ?? "";
          if (partial.length > 65536) partial = "";
          for (const line of lines) {
            if (entries.length >= maxEntries) {
              overflow = true;
              return;
            }
            const entry = parseDirEntry(line);
            if (entry) entries.push(entry);
          }
        },
      },
    );
    return { entries, truncated: result.truncated === true || overflow };
  }

  remove(path: string, scope?: string): Promise<{ removed: boolean }> {
    return this.request("remove", { path, ...(scope ? { scope } : {}) });
  }

  private async sendInput(channel: number, input: Readable | Buffer): Promise<void> {
    const chunks: AsyncIterable<Buffer> | Buffer[] = Buffer.isBuffer(input) ? [input] : input;
    for await (const chunk of chunks) {
      for (let offset = 0; offset < chunk.length; offset += DATA_CHUNK_BYTES) {
        if (this.closed || !this.pending.has(channel)) return;
        const ok = this.output.write(
          encodeDataFrame(channel, Stream.Stdin, chunk.subarray(offset, offset + DATA_CHUNK_BYTES)),
        );
        if (!ok) await new Promise((resolve) => this.output.once("drain", resolve));
      }
    }
    if (!this.closed && this.pending.has(channel))
      this.output.write(encodeEofFrame(channel, Stream.Stdin));
  }

  private onChunk(chunk: Buffer): void {
    if (this.closed) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
      for (const frame of frames) this.dispatch(frame);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.fail(
        new PyroError(
          ErrorCodes.GuestProtocolError,
          `the guest broke the agent protocol: ${message}`,
          {
            hint: "the connection was dropped; restart the VM (its agent may be compromised or out of date)",
          },
        ),
      );
    }
  }

  private dispatch(frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.Event:
        parseJsonPayload(frame.payload); // validated, otherwise unused for now
        return;
      case FrameKind.Data: {
        const { stream, bytes } = parseStreamPayload(frame.payload);
        this.pending.get(frame.channel)?.onData?.(stream, bytes);
        return;
      }
      case FrameKind.Eof:
        parseStreamPayload(frame.payload);
        return;
      case FrameKind.Response: {
        const message = parseJsonPayload(frame.payload);
        const wellFormed =
          (message.ok === true && isObject(message.result)) ||
          (message.ok === false && isObject(message.error));
        // Keep the request pending: fail() must see it to reject it.
        if (!wellFormed) throw new ProtocolError("malformed response");
        const pending = this.pending.get(frame.channel);
        if (!pending) return; // late answer to something we gave up on
        this.pending.delete(frame.channel);
        if (message.ok === true && isObject(message.result)) {
          pending.resolve(message.result);
        } else if (message.ok === false && isObject(message.error)) {
          pending.reject(fromWire(message.error));
        }
        return;
      }
      default:
        throw new ProtocolError(`unexpected frame kind ${frame.kind} from guest`);
    }
  }

  private died(reason: string): PyroError {
    return new PyroError(ErrorCodes.VmDied, `lost the guest agent: ${reason}`);
  }

  private fail(error: PyroError): void {
    if (this.closedError) return;
    this.closedError = error;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
    this.output.destroy();
    if ((this.input as unknown) !== this.output) this.input.destroy();
    for (const listener of this.closeListeners) listener(error);
  }
}

const ENTRY_TYPES = new Set(["file", "directory", "symlink", "other"]);

/** One untrusted listing line: well-formed entries only. */
function parseDirEntry(line: string): DirEntry | undefined {
  try {
    const value = JSON.parse(line) as Record<string, unknown>;
    if (typeof value.path !== "string" || !ENTRY_TYPES.has(value.type as string)) return undefined;
    return {
      path: value.path.slice(0, 4096),
      type: value.type as DirEntry["type"],
      size: typeof value.size === "number" ? value.size : 0,
      mode: typeof value.mode === "number" ? value.mode : 0,
      ...(typeof value.link_target === "string"
        ? { link_target: value.link_target.slice(0, 4096) }
        : {}),
    };
  } catch {
    return undefined;
  }
}

/** A failed op's wire error as the PyroError its code means: mapped here, once. */
export function fromWire(error: Record<string, unknown>): PyroError {
  const code = wireCode(error.code);
  const message =
    typeof error.message === "string" ? error.message.slice(0, 4096) : "unknown error";
  const details = { guest_code: code };
  switch (code) {
    case WireCodes.PathNotAllowed:
      return new PyroError(ErrorCodes.PathNotAllowed, message, {
        fix: { kind: "stay_in_workspace" },
        details,
      });
    case WireCodes.NotFound:
    case WireCodes.CwdNotFound:
      return new PyroError(ErrorCodes.FileNotFound, message, { details });
    case WireCodes.VmDied:
      return new PyroError(ErrorCodes.VmDied, message, { details });
    case WireCodes.ServiceNotFound:
      return new PyroError(ErrorCodes.ServiceNotFound, message, { details });
    case WireCodes.PublishFailed:
    case WireCodes.ServiceExists:
      return new PyroError(ErrorCodes.Conflict, message, { details });
    case WireCodes.LimitExceeded:
      return new PyroError(ErrorCodes.LimitExceeded, message, { details });
    case WireCodes.ShellNotFound:
      return new PyroError(ErrorCodes.ShellNotFound, message, { details });
    case WireCodes.ShellExited:
      return new PyroError(ErrorCodes.ShellClosed, message, { details });
    case WireCodes.SecretNotFound:
      return new PyroError(ErrorCodes.SecretNotFound, message, { details });
    case WireCodes.Busy:
      return new PyroError(ErrorCodes.Busy, message, { details });
    case WireCodes.ResetFailed:
      return new PyroError(ErrorCodes.VmBootFailed, message, {
        fix: { kind: "run_doctor" },
        details,
      });
    default:
      return new PyroError(ErrorCodes.GuestError, message, { details });
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function validateExecResult(result: Record<string, unknown>): ExecResult {
  const exitCode = result.exit_code;
  if (
    typeof exitCode !== "number" ||
    !Number.isInteger(exitCode) ||
    exitCode < 0 ||
    exitCode > 255
  ) {
    throw new PyroError(ErrorCodes.GuestProtocolError, "the guest returned an invalid exit code");
  }
  return {
    exit_code: exitCode,
    signal: typeof result.signal === "string" ? result.signal.slice(0, 32) : null,
    timed_out: result.timed_out === true,
    stdout_truncated: result.stdout_truncated === true,
    stderr_truncated: result.stderr_truncated === true,
    duration_ms: typeof result.duration_ms === "number" ? result.duration_ms : 0,
  };
}

/** Keeps at most `limit` bytes; remembers whether anything was dropped. */
export class BoundedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  /** Returns the part of `bytes` that was kept. */
  push(bytes: Buffer): Buffer {
    const room = this.limit - this.size;
    if (room <= 0) {
      if (bytes.length > 0) this.truncated = true;
      return Buffer.alloc(0);
    }
    const kept = bytes.length > room ? bytes.subarray(0, room) : bytes;
    if (kept.length < bytes.length) this.truncated = true;
    this.chunks.push(Buffer.from(kept));
    this.size += kept.length;
    return kept;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}
