/**
 * Test support for the protocol's unit tests (not a test file itself): a
 * scripted fake guest the real host client talks to, and waiting helpers.
 */
import { PassThrough } from "node:stream";
import { afterEach, expect } from "vitest";
import { ErrorCodes, PyroError } from "../errors.js";
import { AgentClient } from "./client.js";
import {
  FrameDecoder,
  FrameKind,
  encodeDataFrame,
  encodeJsonFrame,
  parseJsonPayload,
  type Frame,
  type Stream,
} from "./frames.js";

/**
 * A scripted "guest": the client reads what the guest writes to `toHost` and
 * writes to `toGuest`, whose frames the test inspects.
 */
export class FakeGuest {
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
export function fakeGuest(): FakeGuest {
  const guest = new FakeGuest();
  guests.push(guest);
  return guest;
}

/** Call once per test file: every fake guest's client is closed after each test. */
export function useFakeGuests(): void {
  afterEach(() => {
    for (const guest of guests.splice(0)) guest.client.close();
  });
}

export function okExec(extra: Record<string, unknown> = {}): Record<string, unknown> {
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
export async function rejection(promise: Promise<unknown>): Promise<PyroError> {
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
export function settleWithin<T>(promise: Promise<T>, what: string, ms = 3000): Promise<T> {
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
export function alreadySettled<T>(promise: Promise<T>, what: string): Promise<T> {
  const notYet = new Promise<never>((_, reject) =>
    setImmediate(() => reject(new Error(`${what} was left pending after the client closed`))),
  );
  return Promise.race([promise, notYet]);
}

export async function expectProtocolErrorAndClosed(guest: FakeGuest, pending: Promise<unknown>) {
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
