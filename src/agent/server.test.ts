/**
 * The real agent server wired to the real host client in-process over two
 * pipes: the same code paths as a guest, with the host's own sh and tar.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, PyroError } from "../errors.js";
import {
  FrameDecoder,
  FrameKind,
  Stream,
  encodeDataFrame,
  encodeEofFrame,
  encodeFrame,
  encodeJsonFrame,
  parseJsonPayload,
  type Frame,
} from "../protocol/frames.js";
import { PROTOCOL_VERSION } from "../protocol/messages.js";
import { VERSION } from "../version.js";
import { AgentClient } from "../protocol/client.js";
import { AgentServer } from "./server.js";

interface Harness {
  client: AgentClient;
  server: AgentServer;
  hostToAgent: PassThrough;
  agentToHost: PassThrough;
  fatal: Error[];
}

const harnesses: Harness[] = [];

function connect(): Harness {
  const hostToAgent = new PassThrough();
  const agentToHost = new PassThrough();
  const server = new AgentServer(hostToAgent, agentToHost);
  const fatal: Error[] = [];
  server.on("fatal", (error: Error) => fatal.push(error));
  server.start();
  const client = new AgentClient(agentToHost, hostToAgent);
  const harness = { client, server, hostToAgent, agentToHost, fatal };
  harnesses.push(harness);
  return harness;
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-agent-test-"));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});
afterEach(() => {
  for (const h of harnesses.splice(0)) h.client.close();
});

let counter = 0;
function scratch(name = "dir"): string {
  const dir = path.join(tmp, `${name}-${++counter}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** A pid counts as gone once it no longer exists or is only a zombie. */
function pidGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

async function waitFor(condition: () => boolean, what: string, attempts = 100): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/**
 * Settle `promise` or fail with a clear message instead of a bare test
 * timeout: the bugs these tests look for show up as requests that hang.
 */
function settleWithin<T>(promise: Promise<T>, what: string, ms = 1500): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} never settled`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

async function rejection(promise: Promise<unknown>): Promise<PyroError> {
  const error = await promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PyroError);
  return error as PyroError;
}

describe("AgentServer handshake", () => {
  it("announces itself with a ready Event on channel 0", async () => {
    const agentToHost = new PassThrough();
    const server = new AgentServer(new PassThrough(), agentToHost);
    server.start();
    const chunk = agentToHost.read() as Buffer;
    const [frame] = new FrameDecoder().push(chunk);
    expect(frame!.kind).toBe(FrameKind.Event);
    expect(frame!.channel).toBe(0);
    expect(parseJsonPayload(frame!.payload)).toEqual({ type: "ready", agent_version: VERSION });
  });

  it("answers hello", async () => {
    const { client } = connect();
    const hello = await client.hello();
    expect(hello.protocol_version).toBe(PROTOCOL_VERSION);
    expect(hello.agent_version).toBe(VERSION);
    expect(hello.kernel_release).toBe(os.release());
    expect(hello.uptime_seconds).toBeGreaterThan(0);
  });

  it("answers sync", async () => {
    const { client } = connect();
    await expect(client.request("sync", {})).resolves.toEqual({});
  });

  it("refuses an unknown op with unknown_op and stays usable", async () => {
    const { client } = connect();
    const error = await rejection(client.request("nope" as "sync", {}));
    expect(error.code).toBe(ErrorCodes.GuestError);
    expect(error.details).toEqual({ guest_code: "unknown_op" });
    // Not even inherited object properties count as ops.
    const proto = await rejection(client.request("constructor" as "sync", {}));
    expect(proto.details).toEqual({ guest_code: "unknown_op" });
    expect((await client.hello()).protocol_version).toBe(PROTOCOL_VERSION);
  });

  it("reports a broken host stream as fatal", () => {
    const { hostToAgent, fatal } = connect();
    hostToAgent.write(Buffer.from("definitely not a frame"));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.name).toBe("ProtocolError");
  });

  it("reports a frame kind the host must not send as fatal", () => {
    const { hostToAgent, fatal } = connect();
    hostToAgent.write(encodeJsonFrame(FrameKind.Response, 99, { ok: true, result: {} }));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.message).toMatch(/unexpected frame kind/);
  });

  it("reports a request on a channel that is already open as fatal", () => {
    const { hostToAgent, fatal } = connect();
    const request = encodeJsonFrame(FrameKind.Request, 7, {
      op: "exec",
      args: { argv: ["sleep", "5"], stdin: true },
    });
    hostToAgent.write(Buffer.concat([request, request]));
    expect(fatal.map((e) => e.message)).toEqual(["channel 7 is already open"]);
    hostToAgent.write(encodeFrame(FrameKind.Cancel, 7));
  });

  it("reports the host closing its stream as fatal", async () => {
    const { hostToAgent, fatal } = connect();
    hostToAgent.end();
    await waitFor(() => fatal.length > 0, "the fatal event");
    expect(fatal[0]!.message).toMatch(/host channel closed/);
  });
});

describe("exec", () => {
  it("returns the exit code and both streams", async () => {
    const { client } = connect();
    const result = await client.exec({ argv: ["sh", "-c", "echo out; echo err >&2; exit 3"] });
    expect(result.exit_code).toBe(3);
    expect(result.stdout.toString()).toBe("out\n");
    expect(result.stderr.toString()).toBe("err\n");
    expect(result.signal).toBeNull();
    expect(result.timed_out).toBe(false);
    expect(result.stdout_truncated).toBe(false);
    expect(result.stderr_truncated).toBe(false);
    expect(result.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it("streams output to the callbacks", async () => {
    const { client } = connect();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const result = await client.exec(
      { argv: ["sh", "-c", "printf a; printf b >&2; printf c"] },
      { onStdout: (b) => out.push(b), onStderr: (b) => err.push(b) },
    );
    expect(Buffer.concat(out).toString()).toBe("ac");
    expect(Buffer.concat(err).toString()).toBe("b");
    expect(result.stdout.toString()).toBe("ac");
  });

  it("passes argv through without a shell", async () => {
    const { client } = connect();
    const argv = ["printf", "%s|", "two words", "$HOME", "*", "'quoted'", "a\nb", "é"];
    const result = await client.exec({ argv });
    expect(result.stdout.toString()).toBe("two words|$HOME|*|'quoted'|a\nb|é|");
  });

  // Regression (fixed): every argv word goes through str(), which
  // refuses "", so a legal empty argument (`printf %s ""`, `git commit -m ""`)
  // is rejected with bad_args. Only argv[0] needs to be non-empty.
  it("passes empty arguments through", async () => {
    const { client } = connect();
    const result = await client.exec({ argv: ["printf", "[%s]", "", "x"] });
    expect(result.stdout.toString()).toBe("[][x]");
  });

  it("honours cwd and env over a clean base environment", async () => {
    const { client } = connect();
    const dir = scratch("cwd");
    const result = await client.exec({
      argv: ["sh", "-c", 'pwd; echo "$FOO"; echo "$LANG"; echo "${VITEST-unset}"'],
      cwd: dir,
      env: { FOO: "bar baz" },
    });
    expect(result.stdout.toString()).toBe(`${fs.realpathSync(dir)}\nbar baz\nC.UTF-8\nunset\n`);
  });

  it("refuses a missing cwd with cwd_not_found", async () => {
    const { client } = connect();
    const error = await rejection(client.exec({ argv: ["true"], cwd: path.join(tmp, "absent") }));
    expect(error.code).toBe(ErrorCodes.FileNotFound);
    expect(error.details).toEqual({ guest_code: "cwd_not_found" });
  });

  it.each([
    ["an empty argv", { argv: [] }],
    ["a non-string argument", { argv: ["echo", 5] }],
    ["an empty command name", { argv: ["", "x"] }],
    ["a negative timeout", { argv: ["true"], timeout_ms: -1 }],
    ["a non-numeric max_output_bytes", { argv: ["true"], max_output_bytes: "lots" }],
  ])("refuses %s with bad_args", async (_name, args) => {
    const { client } = connect();
    const error = await rejection(client.request("exec", args as never));
    expect(error.details).toEqual({ guest_code: "bad_args" });
  });

  it("delivers stdin from a Buffer", async () => {
    const { client } = connect();
    const input = randomBytes(300 * 1024); // several Data frames
    const result = await settleWithin(client.exec({ argv: ["cat"] }, { input }), "exec cat");
    expect(result.exit_code).toBe(0);
    expect(result.stdout.equals(input)).toBe(true);
  });

  it("delivers stdin from a stream", async () => {
    const { client } = connect();
    const input = new PassThrough();
    const exec = client.exec({ argv: ["sh", "-c", "tr a-z A-Z"] }, { input });
    input.write("hello ");
    setImmediate(() => input.end("world"));
    const result = await settleWithin(exec, "exec tr");
    expect(result.stdout.toString()).toBe("HELLO WORLD");
  });

  it("gives a command empty stdin without input", async () => {
    const { client } = connect();
    const result = await client.exec({ argv: ["sh", "-c", "cat; echo done"] });
    expect(result.stdout.toString()).toBe("done\n");
  });

  it("reports a command that is not found as 127", async () => {
    const { client } = connect();
    const result = await client.exec({ argv: ["pyro-no-such-command-xyz", "arg"] });
    expect(result.exit_code).toBe(127);
    expect(result.stderr.toString()).toMatch(/pyro-no-such-command-xyz: command not found/);
  });

  it("reports a command that cannot be executed as 126", async () => {
    const { client } = connect();
    const file = path.join(scratch("noexec"), "script");
    fs.writeFileSync(file, "#!/bin/sh\necho hi\n", { mode: 0o644 });
    const result = await client.exec({ argv: [file] });
    expect(result.exit_code).toBe(126);
  });

  it("keeps binary output byte-exact", async () => {
    const { client } = connect();
    const result = await client.exec({ argv: ["printf", "\\377\\000\\001\\n\\200"] });
    expect([...result.stdout]).toEqual([0xff, 0x00, 0x01, 0x0a, 0x80]);
  });

  it("keeps a large random output byte-exact", async () => {
    const { client } = connect();
    const file = path.join(scratch("random"), "blob");
    const bytes = randomBytes(700 * 1024 + 13);
    fs.writeFileSync(file, bytes);
    const result = await client.exec({ argv: ["cat", file] });
    expect(result.stdout.length).toBe(bytes.length);
    expect(result.stdout.equals(bytes)).toBe(true);
    expect(result.stdout_truncated).toBe(false);
  });

  it("truncates output above max_output_bytes and still lets the command finish", async () => {
    const { client } = connect();
    const result = await client.exec({
      // Far more than a pipe buffer: the command only finishes if the agent keeps draining.
      argv: ["sh", "-c", "head -c 3000000 /dev/zero; echo tail >&2; exit 4"],
      max_output_bytes: 1000,
    });
    expect(result.exit_code).toBe(4);
    expect(result.timed_out).toBe(false);
    expect(result.stdout.length).toBe(1000);
    expect(result.stdout.every((b) => b === 0)).toBe(true);
    expect(result.stdout_truncated).toBe(true);
    expect(result.stderr.toString()).toBe("tail\n");
    expect(result.stderr_truncated).toBe(false);
  });

  // Regression (fixed): pump() returns early once `sent >= maxBytes`
  // without calling onTruncate, so output dropped in a chunk after the one
  // that exactly filled the limit is not reported; the host cannot notice
  // either, since it only ever receives max_output_bytes.
  it("flags truncation when the excess arrives after the limit was filled exactly", async () => {
    const { client } = connect();
    const result = await client.exec({
      argv: ["sh", "-c", "printf abcd; sleep 0.2; printf efgh"],
      max_output_bytes: 4,
    });
    expect(result.stdout.toString()).toBe("abcd");
    expect(result.stdout_truncated).toBe(true);
  });

  it("flags truncation with max_output_bytes 0", async () => {
    const { client } = connect();
    const result = await client.exec({ argv: ["printf", "abcd"], max_output_bytes: 0 });
    expect(result.stdout.length).toBe(0);
    expect(result.stdout_truncated).toBe(true);
  });

  it("reports death by signal", async () => {
    const { client } = connect();
    const result = await client.exec({ argv: ["sh", "-c", "kill -TERM $$"] });
    expect(result.signal).toBe("SIGTERM");
    expect(result.exit_code).toBe(128 + 15);
    expect(result.timed_out).toBe(false);
  });

  it("kills the whole process group on timeout", async () => {
    const { client } = connect();
    const pidFile = path.join(scratch("timeout"), "bg.pid");
    const result = await settleWithin(
      client.exec({
        argv: ["sh", "-c", `sleep 60 & echo $! > '${pidFile}'; sleep 60`],
        timeout_ms: 500,
      }),
      "exec with timeout_ms",
    );
    expect(result.timed_out).toBe(true);
    expect(result.signal).toBe("SIGKILL");
    expect(result.exit_code).toBe(137);
    const pid = Number(fs.readFileSync(pidFile, "utf8").trim());
    expect(pid).toBeGreaterThan(0);
    await waitFor(() => pidGone(pid), `background child ${pid} to die`);
  });

  it("does not wait for a background child that keeps the pipes open", async () => {
    const { client } = connect();
    const pidFile = path.join(scratch("bg"), "bg.pid");
    const result = await settleWithin(
      client.exec({ argv: ["sh", "-c", `sleep 30 & echo $! > '${pidFile}'; echo done`] }),
      "exec with a lingering background child",
    );
    expect(result.exit_code).toBe(0);
    expect(result.stdout.toString()).toBe("done\n");
    process.kill(Number(fs.readFileSync(pidFile, "utf8")), "SIGKILL");
  });

  it("cancels via AbortSignal, killing the command and its children", async () => {
    const { client } = connect();
    const pidFile = path.join(scratch("cancel"), "bg.pid");
    const controller = new AbortController();
    const exec = client.exec(
      { argv: ["sh", "-c", `sleep 60 & echo $! > '${pidFile}'; echo started; sleep 60`] },
      {
        signal: controller.signal,
        onStdout: (bytes) => {
          if (bytes.toString().includes("started")) controller.abort();
        },
      },
    );
    const result = await settleWithin(exec, "cancelled exec");
    expect(result.signal).toBe("SIGKILL");
    expect(result.exit_code).toBe(137);
    expect(result.timed_out).toBe(false);
    const pid = Number(fs.readFileSync(pidFile, "utf8").trim());
    await waitFor(() => pidGone(pid), `background child ${pid} to die`);
  });

  it("runs concurrent commands on separate channels", async () => {
    const { client } = connect();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        client.exec({ argv: ["sh", "-c", `echo ${i}; exit ${i}`] }),
      ),
    );
    results.forEach((r, i) => {
      expect(r.exit_code).toBe(i);
      expect(r.stdout.toString()).toBe(`${i}\n`);
    });
  });
});

/**
 * The agent driven with hand-built frames, for what the client cannot be made
 * to send: several frames in one chunk, as a real virtio-serial read returns them.
 */
function rawAgent() {
  const hostToAgent = new PassThrough();
  const agentToHost = new PassThrough();
  const server = new AgentServer(hostToAgent, agentToHost);
  const fatal: Error[] = [];
  server.on("fatal", (error: Error) => fatal.push(error));
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let waiters: Array<() => void> = [];
  agentToHost.on("data", (chunk: Buffer) => {
    frames.push(...decoder.push(chunk));
    const wake = waiters;
    waiters = [];
    for (const w of wake) w();
  });
  server.start();
  const raw = {
    fatal,
    frames,
    send(...parts: Buffer[]) {
      hostToAgent.write(Buffer.concat(parts));
    },
    /** The Response on `channel`, with the output sent on it before. */
    async response(channel: number) {
      for (;;) {
        const index = frames.findIndex(
          (f) => f.kind === FrameKind.Response && f.channel === channel,
        );
        if (index >= 0) {
          const before = frames.slice(0, index).filter((f) => f.channel === channel);
          const output = (stream: number) =>
            Buffer.concat(
              before
                .filter((f) => f.kind === FrameKind.Data && f.payload[0] === stream)
                .map((f) => f.payload.subarray(1)),
            );
          return {
            message: parseJsonPayload(frames[index]!.payload),
            stdout: output(Stream.Stdout),
            stderr: output(Stream.Stderr),
          };
        }
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    close() {
      hostToAgent.destroy();
      agentToHost.destroy();
    },
  };
  raws.push(raw);
  return raw;
}
const raws: Array<{ close(): void }> = [];
afterEach(() => {
  for (const raw of raws.splice(0)) raw.close();
});

function request(channel: number, op: string, args: Record<string, unknown>): Buffer {
  return encodeJsonFrame(FrameKind.Request, channel, { op, args });
}

describe("frames arriving together", () => {
  it("serves several requests sent in one chunk", async () => {
    const raw = rawAgent();
    raw.send(
      request(1, "hello", {}),
      request(2, "exec", { argv: ["echo", "two"] }),
      request(3, "exec", { argv: ["echo", "three"] }),
    );
    const [one, two, three] = await Promise.all([1, 2, 3].map((c) => raw.response(c)));
    expect(one!.message.ok).toBe(true);
    expect(two!.stdout.toString()).toBe("two\n");
    expect(three!.stdout.toString()).toBe("three\n");
    expect(raw.fatal).toEqual([]);
  });

  it("takes stdin sent in separate chunks after the Request", async () => {
    const raw = rawAgent();
    raw.send(request(1, "exec", { argv: ["cat"], stdin: true, timeout_ms: 5000 }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    raw.send(encodeDataFrame(1, Stream.Stdin, Buffer.from("hello")));
    raw.send(encodeEofFrame(1, Stream.Stdin));
    const { message, stdout } = await raw.response(1);
    expect(stdout.toString()).toBe("hello");
    expect(message.result).toMatchObject({ exit_code: 0, timed_out: false });
  });

  // Regression (fixed): the server starts handlers a microtask after
  // the Request (`Promise.resolve().then(handler)`), so Data/Eof/Cancel frames
  // decoded from the same chunk hit the no-op placeholder hooks and are lost.
  // Here cat never sees its input or EOF and is only ended by timeout_ms.
  it("delivers stdin that arrives in the same chunk as the Request", async () => {
    const raw = rawAgent();
    raw.send(
      request(1, "exec", { argv: ["cat"], stdin: true, timeout_ms: 1000 }),
      encodeDataFrame(1, Stream.Stdin, Buffer.from("hello")),
      encodeEofFrame(1, Stream.Stdin),
    );
    const { message, stdout } = await raw.response(1);
    expect(message.result).toMatchObject({ exit_code: 0, timed_out: false });
    expect(stdout.toString()).toBe("hello");
  });

  it("honours a Cancel that arrives in the same chunk as the Request", async () => {
    const raw = rawAgent();
    raw.send(
      request(1, "exec", { argv: ["sleep", "30"], timeout_ms: 1000 }),
      encodeFrame(FrameKind.Cancel, 1),
    );
    const { message } = await raw.response(1);
    expect(message.result).toMatchObject({ signal: "SIGKILL", timed_out: false });
  });

  // Regression (fixed): exec's finish() has no guard against running
  // more than once. For a spawn error it runs on "error" and again on each
  // pipe "close", re-sending "command not found" as Data frames after the
  // Response has already closed the channel.
  it("sends nothing on a channel after its Response", async () => {
    const raw = rawAgent();
    raw.send(request(1, "exec", { argv: ["pyro-no-such-command-xyz"] }));
    const { message, stderr } = await raw.response(1);
    expect(message.result).toMatchObject({ exit_code: 127 });
    expect(stderr.toString()).toBe("pyro-agent: pyro-no-such-command-xyz: command not found\n");
    // Let any stragglers through: another request round trip, then a short pause.
    raw.send(request(2, "hello", {}));
    await raw.response(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const responseAt = raw.frames.findIndex(
      (f) => f.kind === FrameKind.Response && f.channel === 1,
    );
    const after = raw.frames.slice(responseAt + 1).filter((f) => f.channel === 1);
    expect(after).toEqual([]);
  });
});

describe("read_file", () => {
  it("returns the content and size", async () => {
    const { client } = connect();
    const file = path.join(scratch("read"), "f.bin");
    const bytes = randomBytes(150 * 1024 + 7);
    fs.writeFileSync(file, bytes);
    const result = await client.readFile(file, 10 * 1024 * 1024);
    expect(result.size).toBe(bytes.length);
    expect(result.truncated).toBe(false);
    expect(result.content.equals(bytes)).toBe(true);
  });

  it("reads an empty file", async () => {
    const { client } = connect();
    const file = path.join(scratch("read"), "empty");
    fs.writeFileSync(file, "", { mode: 0o640 });
    fs.chmodSync(file, 0o640);
    await expect(client.readFile(file, 10)).resolves.toEqual({
      size: 0,
      mode: 0o640,
      truncated: false,
      content: Buffer.alloc(0),
    });
  });

  it("truncates at max_bytes", async () => {
    const { client } = connect();
    const file = path.join(scratch("read"), "f.txt");
    fs.writeFileSync(file, "0123456789");
    const result = await client.readFile(file, 4);
    expect(result.content.toString()).toBe("0123");
    expect(result.truncated).toBe(true);
    expect(result.size).toBe(10);
  });

  it("is not truncated at exactly max_bytes", async () => {
    const { client } = connect();
    const file = path.join(scratch("read"), "f.txt");
    fs.writeFileSync(file, "0123");
    const result = await client.readFile(file, 4);
    expect(result.content.toString()).toBe("0123");
    expect(result.truncated).toBe(false);
  });

  it("reports a missing file as not_found", async () => {
    const { client } = connect();
    const error = await rejection(client.readFile(path.join(tmp, "missing.txt"), 100));
    expect(error.code).toBe(ErrorCodes.FileNotFound);
    expect(error.details).toEqual({ guest_code: "not_found" });
    expect(client.closed).toBe(false);
  });

  it("reports a directory as not_a_file", async () => {
    const { client } = connect();
    const error = await rejection(client.readFile(scratch("read"), 100));
    expect(error.details).toEqual({ guest_code: "not_a_file" });
  });
});

describe("write_file", () => {
  // Regression (fixed): the server runs each
  // handler a microtask after the Request, and write_file installs its
  // onData/onEof hooks only after `await open(tmp)`. Data and Eof frames that
  // arrive before that go to the server's no-op placeholders, so the content
  // is lost and, with the Eof lost too, the request never settles.
  it("writes the content with the mode, atomically via a rename", async () => {
    const { client } = connect();
    const dir = scratch("write");
    const file = path.join(dir, "out.txt");
    fs.writeFileSync(file, "old content");
    const oldInode = fs.statSync(file).ino;
    const content = randomBytes(200 * 1024);
    const result = await settleWithin(
      client.writeFile(file, content, { mode: 0o750 }),
      "write_file",
    );
    expect(result.bytes_written).toBe(content.length);
    expect(fs.readFileSync(file).equals(content)).toBe(true);
    expect(fs.statSync(file).mode & 0o777).toBe(0o750);
    // Replaced by rename (a new inode), not rewritten in place; no temp file left behind.
    expect(fs.statSync(file).ino).not.toBe(oldInode);
    expect(fs.readdirSync(dir)).toEqual(["out.txt"]);
  });

  it("never leaves a replaced file's mtime in the second of its previous one", async () => {
    // A .pyc or make rule keyed on whole-second mtimes would otherwise miss the change.
    const { client } = connect();
    const file = path.join(scratch("write"), "calc.py");
    for (const body of ["return a - b", "return a * b", "return a + b"]) {
      const before = fs.existsSync(file) ? Math.floor(fs.statSync(file).mtimeMs / 1000) : -1;
      await settleWithin(client.writeFile(file, Buffer.from(body)), "write_file");
      expect(Math.floor(fs.statSync(file).mtimeMs / 1000)).not.toBe(before);
    }
  });

  it("creates parent directories and defaults the mode to 0644", async () => {
    const { client } = connect();
    const file = path.join(scratch("write"), "a", "b", "c.txt");
    const result = await settleWithin(
      client.writeFile(file, Buffer.from("hi"), { parents: true }),
      "write_file",
    );
    expect(result.bytes_written).toBe(2);
    expect(fs.readFileSync(file, "utf8")).toBe("hi");
    expect(fs.statSync(file).mode & 0o777).toBe(0o644);
  });

  it("fails with not_found when the parent is missing and parents is not set", async () => {
    const { client } = connect();
    const file = path.join(scratch("write"), "missing", "c.txt");
    const error = await rejection(
      settleWithin(client.writeFile(file, Buffer.from("hi")), "write_file"),
    );
    expect(error.details).toEqual({ guest_code: "not_found" });
    expect(fs.existsSync(path.dirname(file))).toBe(false);
  });

  it("writes an empty file", async () => {
    const { client } = connect();
    const file = path.join(scratch("write"), "empty");
    const result = await settleWithin(client.writeFile(file, Buffer.alloc(0)), "write_file");
    expect(result.bytes_written).toBe(0);
    expect(fs.readFileSync(file).length).toBe(0);
  });

  it("a cancelled write leaves neither the target nor a temp file", async () => {
    const { client } = connect();
    const dir = scratch("write");
    const file = path.join(dir, "never.txt");
    const input = new PassThrough(); // never ends
    const controller = new AbortController();
    const write = client.request(
      "write_file",
      { path: file },
      { input, signal: controller.signal },
    );
    input.write("partial");
    // Give the handler time to open its temp file before cancelling.
    await waitFor(() => fs.readdirSync(dir).length > 0, "the temp file");
    controller.abort();
    const error = await rejection(settleWithin(write, "cancelled write_file"));
    expect(error.details).toEqual({ guest_code: "cancelled" });
    expect(fs.readdirSync(dir)).toEqual([]);
    input.destroy();
  });
});

describe("tar_out / tar_in", () => {
  function populate(dir: string): Map<string, Buffer> {
    const files = new Map<string, Buffer>([
      ["a.txt", Buffer.from("alpha\n")],
      ["sub/b.bin", randomBytes(100 * 1024)],
      ["sub/deeper/c with space.txt", Buffer.from("gamma")],
      ["empty", Buffer.alloc(0)],
    ]);
    for (const [name, content] of files) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), content);
    }
    fs.chmodSync(path.join(dir, "a.txt"), 0o755);
    fs.symlinkSync("a.txt", path.join(dir, "link"));
    return files;
  }

  it("tar_out streams an archive the host's tar can read", async () => {
    const { client } = connect();
    const source = scratch("src");
    populate(source);
    const chunks: Buffer[] = [];
    const result = await client.tarOut(source, (b) => chunks.push(Buffer.from(b)));
    const archive = Buffer.concat(chunks);
    expect(result.bytes).toBe(archive.length);
    expect(archive.length % 512).toBe(0);
    const listed = await client.exec(
      { argv: ["tar", "-tf", "-"] },
      { input: archive }, // exercised via exec stdin rather than the host's child_process
    );
    const names = listed.stdout.toString().split("\n").filter(Boolean).sort();
    expect(names).toEqual(
      expect.arrayContaining(["./a.txt", "./sub/b.bin", "./sub/deeper/c with space.txt", "./link"]),
    );
  });

  it("tar_out of a missing directory is not_found", async () => {
    const { client } = connect();
    const error = await rejection(client.tarOut(path.join(tmp, "nope"), () => {}));
    expect(error.details).toEqual({ guest_code: "not_found" });
  });

  // Regression (fixed): tar_in installs its hooks only after
  // `await mkdir(dir)`, so the archive's first Data frames and the Eof can be
  // dropped; see the write_file note above.
  it("tar_out then tar_in reproduces the files", async () => {
    const { client } = connect();
    const source = scratch("src");
    const files = populate(source);
    const chunks: Buffer[] = [];
    await client.tarOut(source, (b) => chunks.push(Buffer.from(b)));
    const archive = Buffer.concat(chunks);

    const target = path.join(scratch("dst"), "new");
    const result = await settleWithin(client.tarIn(target, archive), "tar_in");
    expect(result.bytes).toBe(archive.length);
    for (const [name, content] of files) {
      expect(fs.readFileSync(path.join(target, name)).equals(content)).toBe(true);
    }
    expect(fs.statSync(path.join(target, "a.txt")).mode & 0o777).toBe(0o755);
    expect(fs.readlinkSync(path.join(target, "link"))).toBe("a.txt");
  });

  it("tar_in of something that is not an archive fails with tar_failed", async () => {
    const { client } = connect();
    const target = scratch("dst");
    // Feed the garbage as a stream that starts after the handler is listening,
    // so this test exercises tar's failure rather than the hook race above.
    const input = new PassThrough();
    const tarIn = client.tarIn(target, input);
    setTimeout(() => input.end(Buffer.alloc(4096, "x")), 200);
    const error = await rejection(settleWithin(tarIn, "tar_in"));
    expect(error.details).toEqual({ guest_code: "tar_failed" });
    expect(error.message).toMatch(/tar exited/);
  });
});
