/**
 * One interactive shell in the guest: a real PTY (node-pty, whose native
 * module ships on pyro's runtime disk, never from the user's environment),
 * its output redacted as it arrives, kept in a bounded ring for raw reads,
 * and fed to a headless terminal emulator (@xterm/headless) that renders
 * what a person would see for plain reads: escape sequences interpreted,
 * carriage returns, backspaces and cursor moves applied.
 *
 * Loaded on the first shell_open only: the emulator is a large module, and
 * most workspaces never open a shell.
 */
import os from "node:os";
import { spawn as spawnPty, type IPty } from "@lydell/node-pty";
import { Terminal, type IMarker } from "@xterm/headless";
import type { ShellSignal } from "../protocol/messages.js";
import { listPids, statField } from "../util/procs.js";
import { OutputRing, charsLength, continuationPrefix, wholeCharsLength } from "./output-ring.js";

export interface TerminalOptions {
  file: string;
  args: string[];
  cwd: string;
  cols: number;
  rows: number;
  env: Record<string, string>;
  redaction: OutputRedaction;
  ringBytes: number;
}

/** How a shell's output is kept free of secrets: as it streams in, and once more as rendered text. */
export interface OutputRedaction {
  stream: { push(chunk: Buffer): Buffer; end(): Buffer };
  text(text: string): string;
}

export interface TextRead {
  text: string;
  cursor: number;
  nextCursor: number;
  droppedBytes: number;
  truncated: boolean;
  screen: "normal" | "alternate" | null;
}

/** Lines of history the emulator keeps for plain reads, fewer on a wide terminal (memory per cell). */
const SCROLLBACK_LINES = 5000;
const SCROLLBACK_CELLS = 600_000;
/** Output the emulator may lag behind by before the PTY is paused (the program then blocks, as on a slow terminal). */
const EMULATOR_BACKLOG_BYTES = 1024 * 1024;
/** Between SIGHUP and SIGKILL when a shell is closed. */
const CLOSE_GRACE_MS = 2000;
/** Line marks kept for plain reads (one per read, the latest ones). */
const MAX_MARKS = 64;

export class TerminalSession {
  readonly pid: number;
  /** When the shell's process started (jiffies since boot): tells it apart from a later process with its pid. */
  private readonly startTime: string | undefined;
  /** When output last arrived or input was written (what "idle" is measured from). */
  lastActivity = Date.now();
  exit: { code: number; signal: string | null } | undefined;
  private readonly pty: IPty;
  private readonly term: Terminal;
  private readonly ring: OutputRing;
  private readonly redaction: OutputRedaction;
  /** Cursor up to which the emulator has processed the output. */
  private emulated = 0;
  private paused = false;
  /** Where the output at a cursor began on the screen: plain reads start from that line. */
  private readonly marks: { cursor: number; marker: IMarker }[] = [];
  private waiters = new Set<() => void>();
  private readonly closed: Promise<void>;

  constructor(options: TerminalOptions) {
    this.ring = new OutputRing(options.ringBytes);
    this.redaction = options.redaction;
    this.term = new Terminal({
      cols: options.cols,
      rows: options.rows,
      scrollback: Math.min(SCROLLBACK_LINES, Math.floor(SCROLLBACK_CELLS / options.cols)),
      allowProposedApi: true,
    });
    const start = this.term.registerMarker(0);
    if (start) this.marks.push({ cursor: 0, marker: start });
    this.pty = spawnPty(options.file, options.args, {
      name: options.env.TERM ?? "xterm-256color",
      cols: options.cols,
      rows: options.rows,
      cwd: options.cwd,
      env: options.env,
      encoding: null,
    });
    this.pid = this.pty.pid;
    this.startTime = startTimeOf(this.pid);
    this.pty.onData((data) => this.accept(this.redaction.stream.push(data as unknown as Buffer)));
    this.closed = new Promise((resolve) => {
      this.pty.onExit(({ exitCode, signal }) => {
        // What the shell started ends with it: background jobs, nohup'ed ones too. Now,
        // while they keep its session id in use (the kernel does not hand it out again).
        this.killSession();
        this.accept(this.redaction.stream.end());
        this.exit = { code: exitCode, signal: signal ? signalName(signal) : null };
        this.notify();
        resolve();
      });
    });
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** Cursor after the last byte of output. */
  get end(): number {
    return this.ring.end;
  }

  private accept(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.ring.append(bytes);
    this.lastActivity = Date.now();
    if (!this.paused && this.ring.end - this.emulated > EMULATOR_BACKLOG_BYTES) {
      this.paused = true;
      this.pty.pause();
    }
    this.term.write(bytes, () => {
      this.emulated += bytes.length;
      if (this.paused && this.ring.end - this.emulated < EMULATOR_BACKLOG_BYTES / 4) {
        this.paused = false;
        this.pty.resume();
      }
      this.notify();
    });
    this.notify();
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
  }

  /** Resolves on the next output, exit, or after `ms`. */
  private changeOrTimeout(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const waiters = this.waiters;
      function done() {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  write(input: string): number {
    if (!this.running) throw new Error("the shell has exited");
    this.pty.write(input);
    this.lastActivity = Date.now();
    return Buffer.byteLength(input);
  }

  /** Resolves once the shell has printed something (its prompt), exited, or `capMs` passed. */
  async firstOutput(capMs: number): Promise<void> {
    const deadline = Date.now() + capMs;
    while (this.ring.end === 0 && this.running && Date.now() < deadline)
      await this.changeOrTimeout(deadline - Date.now());
  }

  /**
   * Wait until nothing has been written or printed for `idleMs` (true), the
   * shell exited (true), or `capMs` passed (false).
   */
  async waitForIdle(idleMs: number, capMs: number): Promise<boolean> {
    const deadline = Date.now() + capMs;
    for (;;) {
      const quiet = Date.now() - this.lastActivity;
      if (!this.running || quiet >= idleMs) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(idleMs - quiet, left)));
    }
  }

  /** The output as produced (escape sequences included) from `cursor`, at most `maxChars` characters. */
  readRaw(cursor: number, maxChars: number): TextRead {
    const from = Math.max(cursor, this.ring.start);
    let bytes = this.ring.read(from, maxChars * 4); // a character is at most 4 bytes
    const skip = continuationPrefix(bytes); // a cursor inside a character starts at the next one
    bytes = bytes.subarray(skip, skip + charsLength(bytes.subarray(skip), maxChars));
    // A character cut by the end of the output so far waits for its rest; anywhere
    // else (or once the shell is gone) a broken one goes out as it is, as U+FFFD.
    if (this.running && from + skip + bytes.length === this.ring.end) {
      bytes = bytes.subarray(0, wholeCharsLength(bytes));
    }
    const nextCursor = from + skip + bytes.length;
    return {
      text: this.redaction.text(bytes.toString("utf8")),
      cursor: from,
      nextCursor,
      droppedBytes: from - cursor,
      truncated: nextCursor < this.ring.end,
      screen: null,
    };
  }

  /**
   * What a person would see of the output since `cursor`: the screen lines
   * from the one that output began on, or, while a full-screen program
   * holds the alternate screen, that screen. Longer than `maxChars`, the
   * latest part is kept. The next read starts after everything shown.
   */
  async readPlain(cursor: number, maxChars: number): Promise<TextRead> {
    while (this.emulated < this.ring.end) await this.changeOrTimeout(1000);
    const end = this.ring.end;
    const buffer = this.term.buffer.active;
    let text: string;
    let linesLost = false;
    if (buffer.type === "alternate") {
      text = this.lines(0, this.term.rows - 1);
    } else {
      const mark = this.markAt(cursor);
      const first = mark && !mark.marker.isDisposed ? mark.marker.line : 0;
      linesLost = !mark || mark.marker.isDisposed || mark.marker.line < 0;
      text = this.lines(Math.max(0, first), this.lastLine());
      this.addMark(end);
    }
    // Rendered, a secret printed with escape sequences inside it is whole again.
    text = this.redaction.text(text);
    const truncated = text.length > maxChars;
    if (truncated) text = text.slice(text.length - maxChars);
    return {
      text,
      cursor: Math.max(cursor, this.ring.start),
      nextCursor: end,
      droppedBytes: Math.max(0, this.ring.start - cursor),
      truncated: truncated || (linesLost && cursor > 0),
      screen: buffer.type,
    };
  }

  private markAt(cursor: number): { cursor: number; marker: IMarker } | undefined {
    let best: { cursor: number; marker: IMarker } | undefined;
    for (const mark of this.marks) {
      if (mark.cursor <= cursor && !mark.marker.isDisposed && (!best || mark.cursor >= best.cursor))
        best = mark;
    }
    return best;
  }

  private addMark(cursor: number): void {
    if (this.marks.some((m) => m.cursor === cursor && !m.marker.isDisposed)) return;
    const marker = this.term.registerMarker(0);
    if (!marker) return;
    this.marks.push({ cursor, marker });
    while (this.marks.length > MAX_MARKS) this.marks.shift()!.marker.dispose();
  }

  /** The last line with anything on it, or the cursor's line if that is later. */
  private lastLine(): number {
    const buffer = this.term.buffer.active;
    let last = buffer.baseY + buffer.cursorY;
    for (let i = buffer.length - 1; i > last; i--) {
      if (buffer.getLine(i)?.translateToString(true)) {
        last = i;
        break;
      }
    }
    return last;
  }

  /** Lines first..last as text: trailing blanks trimmed, lines the terminal wrapped joined again. */
  private lines(first: number, last: number): string {
    const buffer = this.term.buffer.active;
    const out: string[] = [];
    for (let i = first; i <= last; i++) {
      const line = buffer.getLine(i);
      if (!line) continue;
      const text = line.translateToString(true);
      if (line.isWrapped && out.length > 0) out[out.length - 1] += text;
      else out.push(text);
    }
    while (out.length > 0 && out[out.length - 1] === "" && buffer.type === "alternate") out.pop();
    return out.join("\n");
  }

  /**
   * SIGKILL every process of the shell's session (the shell leads it, so its
   * id is the shell's pid). Only while that id is still ours: the shell runs,
   * or it is gone and no other process took its pid (the kernel keeps a
   * session id out of use while any member lives, so members found then are
   * the shell's).
   */
  private killSession(): void {
    const now = startTimeOf(this.pid);
    if (now !== undefined && now !== this.startTime) return; // the pid is another process's now
    for (const pid of listPids()) {
      if (Number(statField(pid, 6)) !== this.pid) continue;
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    }
  }

  /** The shell's foreground process group: what Ctrl-C would reach. */
  foregroundGroup(): number {
    const tpgid = Number(statField(this.pid, 8)); // the terminal's foreground process group
    return Number.isInteger(tpgid) && tpgid > 0 ? tpgid : this.pid;
  }

  signal(signal: ShellSignal): number {
    const group = this.foregroundGroup();
    try {
      process.kill(-group, `SIG${signal}`);
    } catch {
      // Gone already.
    }
    return group;
  }

  /**
   * Hang up (SIGHUP to the shell and its foreground job); once the shell is
   * gone (see onExit), or after a grace period, whatever of its session is
   * left is killed.
   */
  async close(): Promise<void> {
    if (this.running) {
      for (const group of new Set([this.pid, this.foregroundGroup()])) killGroup(group, "SIGHUP");
      await Promise.race([
        this.closed,
        new Promise((resolve) => setTimeout(resolve, CLOSE_GRACE_MS)),
      ]);
      if (this.running) {
        this.killSession();
        await this.closed;
      }
    }
    for (const mark of this.marks) mark.marker.dispose();
    this.term.dispose();
  }
}

function startTimeOf(pid: number): string | undefined {
  return statField(pid, 22);
}

function killGroup(group: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-group, signal);
  } catch {
    // Gone already.
  }
}

function signalName(signal: number): string {
  const entry = Object.entries(os.constants.signals).find(([, number]) => number === signal);
  return entry ? entry[0] : String(signal);
}
