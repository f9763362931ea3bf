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

/**
 * The texts that count as a secret's value in output: the value (and, for
 * one of several lines, as a terminal prints it), and its longer lines.
 */
export function redactionPatterns(value: string): { whole: string[]; lines: string[] } {
  const trimmed = value.replace(/[\r\n]+$/, ""); // a file's final newline is not part of the value
  if (!trimmed.includes("\n")) return { whole: trimmed ? [trimmed] : [], lines: [] };
  return {
    // A terminal prints "\n" as "\r\n".
    whole: [trimmed, trimmed.replace(/\r?\n/g, "\r\n")],
    lines: trimmed.split(/\r?\n/).filter((line) => line.trim().length >= MIN_LINE_CHARS),
  };
}

export class Redactor {
  private readonly patterns: Pattern[];

  constructor(values: Iterable<string> = []) {
    const all = new Set<string>();
    const lines = new Set<string>();
    for (const value of values) {
      const { whole, lines: own } = redactionPatterns(value);
      for (const p of whole) all.add(p);
      // Each pattern is a search over all output: a key's lines count, a book's do not.
      for (const line of own) if (lines.size < MAX_LINE_PATTERNS) lines.add(line);
    }
    this.patterns = [...all, ...lines].map((text) => new Pattern(Buffer.from(text)));
  }

  /** Whether there is anything to redact. */
  get active(): boolean {
    return this.patterns.length > 0;
  }

  redact(text: string): string {
    if (!this.active) return text;
    return this.redactBytes(Buffer.from(text)).toString("utf8");
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
    return new StreamRedactor(this.patterns);
  }
}

/** Line patterns of multi-line secrets kept at most (beyond, only whole values are redacted). */
const MAX_LINE_PATTERNS = 256;

/** A secret's bytes and its KMP failure table, to find how much of it ends a buffer in linear time. */
class Pattern {
  private readonly failure: Int32Array;

  constructor(readonly bytes: Buffer) {
    this.failure = new Int32Array(bytes.length);
    for (let i = 1, k = 0; i < bytes.length; i++) {
      while (k > 0 && bytes[i] !== bytes[k]) k = this.failure[k - 1]!;
      if (bytes[i] === bytes[k]) k++;
      this.failure[i] = k;
    }
  }

  get length(): number {
    return this.bytes.length;
  }

  /** The longest proper prefix of this secret that `data[from..]` ends with (its length; 0 for none). */
  partialAtEnd(data: Buffer, from: number): number {
    const p = this.bytes;
    let k = 0;
    for (let i = Math.max(from, data.length - p.length + 1); i < data.length; i++) {
      while (k > 0 && data[i] !== p[k]) k = this.failure[k - 1]!;
      if (data[i] === p[k]) k++;
      if (k === p.length) k = this.failure[k - 1]!;
    }
    return k;
  }
}

/**
 * A fragment of a secret this long at the edge of output that was cut (a
 * truncated stream, a file read at its byte limit) is masked too; shorter
 * ones say nothing about the value and are left alone.
 */
export const MASKED_FRAGMENT_CHARS = 4;

/**
 * Redacts output that arrives in chunks; see the file comment. Every
 * occurrence of every secret is found, overlapping ones merged into one
 * [REDACTED]; each push costs time linear in the chunk (and in the secrets'
 * lengths), never more, whatever the output.
 */
export class StreamRedactor {
  private held: Buffer = Buffer.alloc(0);

  constructor(private readonly patterns: Pattern[]) {}

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
    const data = this.takeHeld();
    if (this.patterns.length === 0 || data.length === 0) return data;
    if (options.cut === true) {
      const out = this.scan(data, false);
      const rest = this.takeHeld();
      if (rest.length >= MASKED_FRAGMENT_CHARS) return Buffer.concat([out, REDACTED_BYTES]);
      return Buffer.concat([out, this.scan(rest, true)]);
    }
    return this.scan(data, true);
  }

  private scan(data: Buffer, final: boolean): Buffer {
    const patterns = this.patterns;
    // From here on a secret may have begun and not arrived whole: held back.
    let holdFrom = data.length;
    if (!final) {
      for (const p of patterns)
        holdFrom = Math.min(holdFrom, data.length - p.partialAtEnd(data, 0));
    }
    const next = patterns.map((p) => data.indexOf(p.bytes));
    const out: Buffer[] = [];
    let pos = 0;
    for (;;) {
      let at = -1;
      for (const n of next) if (n !== -1 && (at === -1 || n < at)) at = n;
      if (at === -1 || at >= holdFrom) break;
      // The match, merged with every occurrence that starts inside it.
      let end = at;
      for (let grew = true; grew;) {
        grew = false;
        patterns.forEach((p, i) => {
          while (next[i] !== -1 && next[i]! <= end) {
            const stop = next[i]! + p.length;
            if (stop > end) {
              end = stop;
              grew = true;
            }
            next[i] = data.indexOf(p.bytes, next[i]! + 1);
          }
        });
      }
      // A secret still arriving overlaps it: it may grow yet, so hold it back whole.
      if (holdFrom < end) {
        holdFrom = Math.min(holdFrom, at);
        break;
      }
      out.push(data.subarray(pos, at), REDACTED_BYTES);
      pos = end;
    }
    holdFrom = Math.max(holdFrom, pos);
    out.push(data.subarray(pos, holdFrom));
    this.held = Buffer.from(data.subarray(holdFrom));
    return Buffer.concat(out);
  }
}
