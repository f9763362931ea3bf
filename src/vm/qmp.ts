/**
 * A minimal QMP (QEMU Machine Protocol) client: newline-delimited JSON over a
 * unix socket, one command at a time is enough for pyro but ids let several
 * be in flight. Lines are bounded so a confused QEMU cannot exhaust memory.
 */
import { EventEmitter } from "node:events";
import net from "node:net";
import { ErrorCodes, PyroError } from "../errors.js";

const MAX_LINE_BYTES = 1024 * 1024;

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
}

export class QmpClient extends EventEmitter {
  private buffer = "";
  private nextId = 1;
  private readonly pending = new Map<
    string,
    { resolve(v: unknown): void; reject(e: Error): void }
  >();
  private closed = false;

  private constructor(private readonly socket: net.Socket) {
    super();
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("close", () =>
      this.shutdown(new PyroError(ErrorCodes.VmDied, "QMP connection closed")),
    );
    socket.on("error", () => {});
  }

  static async connect(socketPath: string): Promise<QmpClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(socketPath);
      s.once("connect", () => resolve(s));
      s.once("error", reject);
    });
    const client = new QmpClient(socket);
    await new Promise<void>((resolve, reject) => {
      client.once("greeting", () => resolve());
      client.once("closed", reject);
    });
    await client.execute("qmp_capabilities");
    return client;
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closed)
      return Promise.reject(new PyroError(ErrorCodes.VmDied, "QMP connection closed"));
    const id = String(this.nextId++);
    const message = JSON.stringify({ execute: command, id, ...(args ? { arguments: args } : {}) });
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(`${message}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    if (this.buffer.length > MAX_LINE_BYTES && !this.buffer.includes("\n")) {
      this.socket.destroy();
      return;
    }
    let newline: number;
    while ((newline = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if ("QMP" in message) {
      this.emit("greeting", message);
    } else if (typeof message.event === "string") {
      this.emit("event", message as unknown as QmpEvent);
    } else if (typeof message.id === "string" && this.pending.has(message.id)) {
      const pending = this.pending.get(message.id)!;
      this.pending.delete(message.id);
      if ("error" in message) {
        const error = message.error as { desc?: string };
        pending.reject(
          new PyroError(ErrorCodes.VmBootFailed, `QEMU refused: ${error.desc ?? "unknown error"}`),
        );
      } else {
        pending.resolve(message.return);
      }
    }
  }

  private shutdown(error: PyroError): void {
    if (this.closed) return;
    this.closed = true;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
    this.emit("closed", error);
  }
}
