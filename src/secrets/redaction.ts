/**
 * Redaction: every occurrence of a secret's value in output handed to a
 * caller becomes `[REDACTED]`. `redact` does whole texts; a `StreamRedactor`
 * does output that arrives in chunks, holding back a chunk's tail while it
 * may still be the start of a secret, so a value split across chunks (or
 * across reads) is caught too. Used by the guest agent (shell and service
 * output, as it is produced) and by the host (everything it returns).
 */

export const REDACTED = "[REDACTED]";
const REDACTED_BYTES = Buffer.from(REDACTED);

/** Lines of a multi-line secret this long are redacted on their own too (e.g. `head -2 key.pem`). */
const MIN_LINE_CHARS = 8;

/** The texts that count as a secret's value in output. */
export function redactionPatterns(value: string): string[] {
  const trimmed = value.replace(/[\r\n]+$/, ""); // a file's final newline is not part of the value
  const patterns = new Set<string>([trimmed]);
  if (trimmed.includes("\n")) {
    // A terminal prints "\n" as "\r\n".
    patterns.add(trimmed.replace(/\r?\n/g, "\r\n"));
    for (const line of trimmed.split(/\r?\n/)) {
      if (line.trim().length >= MIN_LINE_CHARS) patterns.add(line);
    }
  }
  return [...patterns].filter((p) => p.length > 0);
}

export class Redactor {
  /** Longest first: a secret that contains another is replaced whole. */
  private readonly texts: string[];
  private readonly bytes: Buffer[];

  constructor(values: Iterable<string> = []) {
    const all = new Set<string>();
    for (const value of values) for (const p of redactionPatterns(value)) all.add(p);
    this.texts = [...all].sort((a, b) => b.length - a.length);
    this.bytes = this.texts.map((t) => Buffer.from(t));
  }

  /** Whether there is anything to redact. */
  get active(): boolean {
    return this.texts.length > 0;
  }

  redact(text: string): string {
    let out = text;
    for (const pattern of this.texts) {
      if (out.includes(pattern)) out = out.split(pattern).join(REDACTED);
    }
    return out;
  }

  /** `cut`: the bytes were cut at their end (a limit), so a secret's start there is masked. */
  redactBytes(bytes: Buffer, options: { cut?: boolean } = {}): Buffer {
    if (!this.active) return bytes;
    const stream = this.stream();
    return Buffer.concat([stream.push(bytes), stream.end(options)]);
  }

  /** Every string inside a JSON-like value (objects, arrays), redacted; other values as they are. */
  redactDeep<T>(value: T): T {
    if (!this.active) return value;
    return this.walk(value) as T;
  }

  private walk(value: unknown): unknown {
    if (typeof value === "string") return this.redact(value);
    if (Array.isArray(value)) return value.map((item) => this.walk(item));
    if (value !== null && typeof value === "object" && !Buffer.isBuffer(value)) {
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return value;
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.walk(v)]));
    }
    return value;
  }

  stream(): StreamRedactor {
    return new StreamRedactor(this.bytes);
  }
}

/**
 * A fragment of a secret this long at the edge of output that was cut (a
 * truncated stream, a file read at its byte limit) is masked too; shorter
 * ones say nothing about the value and are left alone.
 */
export const MASKED_FRAGMENT_CHARS = 4;

/** Redacts output that arrives in chunks; see the file comment. */
export class StreamRedactor {
  private held: Buffer = Buffer.alloc(0);
  private readonly longest: number;

  constructor(private readonly patterns: Buffer[]) {
    this.longest = patterns.reduce((max, p) => Math.max(max, p.length), 0);
  }

  /** Bytes held back because they may be the start of a secret. */
  get pending(): number {
    return this.held.length;
  }

  /** Hand over what is held back, unredacted, and forget it (to go on with another redactor). */
  takeHeld(): Buffer {
    const held = this.held;
    this.held = Buffer.alloc(0);
    return held;
  }

  /** What of `chunk` (after anything held back) can be handed on now, redacted. */
  push(chunk: Buffer): Buffer {
    if (this.patterns.length === 0) return chunk;
    const data = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    return this.scan(data, false);
  }

  /**
   * The stream is over: whatever was held back goes out, redacted where it
   * is a secret. `cut`: the stream was truncated, so a held-back start of a
   * secret (at least MASKED_FRAGMENT_CHARS long) is masked instead.
   */
  end(options: { cut?: boolean } = {}): Buffer {
    const data = this.held;
    this.held = Buffer.alloc(0);
    if (this.patterns.length === 0) return data;
    const out = this.scan(data, false);
    const rest = this.takeHeld();
    if (rest.length === 0) return out;
    const mask = options.cut === true && rest.length >= MASKED_FRAGMENT_CHARS;
    return Buffer.concat([out, mask ? REDACTED_BYTES : this.scan(rest, true)]);
  }

  private scan(data: Buffer, final: boolean): Buffer {
    const out: Buffer[] = [];
    let pos = 0;
    for (;;) {
      let at = -1;
      let length = 0;
      for (const pattern of this.patterns) {
        const found = data.indexOf(pattern, pos);
        if (
          found !== -1 &&
          (at === -1 || found < at || (found === at && pattern.length > length))
        ) {
          at = found;
          length = pattern.length;
        }
      }
      if (at === -1) break;
      // A longer secret may start here (or just before) and not have arrived whole yet.
      const longer = final ? -1 : this.longerPending(data, pos, at);
      if (longer !== -1) {
        out.push(data.subarray(pos, longer));
        this.held = Buffer.from(data.subarray(longer));
        return Buffer.concat(out);
      }
      out.push(data.subarray(pos, at), REDACTED_BYTES);
      pos = at + length;
    }
    const hold = final ? 0 : this.partialTail(data, pos);
    out.push(data.subarray(pos, data.length - hold));
    this.held = Buffer.from(data.subarray(data.length - hold));
    return Buffer.concat(out);
  }

  /**
   * The earliest start in [from, at] of a secret whose beginning is all the
   * rest of `data`: it could still turn out longer than the match at `at`.
   */
  private longerPending(data: Buffer, from: number, at: number): number {
    for (let start = Math.max(from, at - this.longest + 1); start <= at; start++) {
      const rest = data.subarray(start);
      if (
        this.patterns.some((p) => p.length > rest.length && p.subarray(0, rest.length).equals(rest))
      )
        return start;
    }
    return -1;
  }

  /** Length of the longest tail of data[from..] that a secret starts with (and is not all of). */
  private partialTail(data: Buffer, from: number): number {
    const room = Math.min(this.longest - 1, data.length - from);
    for (let k = room; k > 0; k--) {
      const tail = data.subarray(data.length - k);
      if (this.patterns.some((p) => p.length > k && p.subarray(0, k).equals(tail))) return k;
    }
    return 0;
  }
}
