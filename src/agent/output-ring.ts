/**
 * A shell's output, kept in a bounded ring and addressed by cursors: a
 * cursor is the byte offset of the output since the shell opened, so a
 * reader that fell behind learns exactly how much it missed.
 */
export class OutputRing {
  private readonly buffer: Buffer;
  /** Cursor after the last byte written. */
  private endCursor = 0;

  constructor(readonly capacity: number) {
    this.buffer = Buffer.alloc(capacity);
  }

  get end(): number {
    return this.endCursor;
  }

  /** The oldest cursor still held. */
  get start(): number {
    return Math.max(0, this.endCursor - this.capacity);
  }

  append(chunk: Buffer): void {
    const data =
      chunk.length > this.capacity ? chunk.subarray(chunk.length - this.capacity) : chunk;
    let at = (this.endCursor + chunk.length - data.length) % this.capacity;
    let from = 0;
    while (from < data.length) {
      const n = Math.min(data.length - from, this.capacity - at);
      data.copy(this.buffer, at, from, from + n);
      from += n;
      at = (at + n) % this.capacity;
    }
    this.endCursor += chunk.length;
  }

  /** Bytes from `cursor` (at least start, at most end), at most `maxBytes` of them. */
  read(cursor: number, maxBytes: number): Buffer {
    const from = Math.min(Math.max(cursor, this.start), this.endCursor);
    const length = Math.min(maxBytes, this.endCursor - from);
    const out = Buffer.alloc(length);
    let at = from % this.capacity;
    let copied = 0;
    while (copied < length) {
      const n = Math.min(length - copied, this.capacity - at);
      this.buffer.copy(out, copied, at, at + n);
      copied += n;
      at = (at + n) % this.capacity;
    }
    return out;
  }
}

/** How many bytes of `bytes` end on a whole UTF-8 character (a cut never splits one). */
export function wholeCharsLength(bytes: Buffer): number {
  let end = bytes.length;
  // Step back over at most 3 continuation bytes to the start of the last character.
  let i = end - 1;
  while (i >= 0 && end - i <= 4 && (bytes[i]! & 0xc0) === 0x80) i--;
  if (i < 0) return end;
  const lead = bytes[i]!;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  if (end - i < need) end = i;
  return end;
}

/** How many bytes of `bytes` hold its first `maxChars` UTF-8 characters (whole ones). */
export function charsLength(bytes: Buffer, maxChars: number): number {
  let chars = 0;
  for (let i = 0; i < bytes.length; i++) {
    if ((bytes[i]! & 0xc0) !== 0x80) {
      if (chars === maxChars) return i;
      chars += 1;
    }
  }
  return bytes.length;
}

/** How many leading bytes are continuation bytes (a cursor that landed inside a character). */
export function continuationPrefix(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length && i < 3 && (bytes[i]! & 0xc0) === 0x80) i++;
  return i;
}
