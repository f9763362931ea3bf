/** The agent's exec op through the real host client: argv, env, stdin, bounds, signals, timeouts. */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors.js";
import {} from "../protocol/frames.js";
import {
  connect,
  pidGone,
  rejection,
  scratch,
  settleWithin,
  useAgentHarness,
  waitFor,
} from "./testing.js";

useAgentHarness();

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
    const error = await rejection(
      client.exec({ argv: ["true"], cwd: path.join(scratch(), "absent") }),
    );
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
