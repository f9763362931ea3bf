/**
 * The agent's shells through the real host client, on this machine's own
 * PTYs: plain and raw reads with cursors, idle waits, signals, secrets
 * redacted as output arrives, exit and close.
 */
import fs from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors.js";
import { REDACTED } from "../secrets/redaction.js";
import { connect, pidGone, rejection, scratch, useAgentHarness, waitFor } from "./testing.js";

useAgentHarness();

let cwd: string;
beforeAll(() => {
  process.env.PYRO_AGENT_SECRETS_DIR = scratch("secrets");
  cwd = scratch("cwd");
});

let counter = 0;
const client = () => connect().client;

async function open(extra: Record<string, unknown> = {}): Promise<string> {
  const id = `sh_test${++counter}`;
  await client().request("shell_open", { id, cwd, ...extra } as never);
  return id;
}

/** Read from `cursor` until `pattern` shows up in plain text (or give up after a few seconds). */
async function readUntil(id: string, pattern: RegExp, cursor = 0) {
  let text = "";
  let next = cursor;
  for (let i = 0; i < 100; i++) {
    const read = await client().shellRead({ id, cursor: next, plain: true, wait_for_idle_ms: 50 });
    text += read.text;
    next = read.next_cursor;
    if (pattern.test(text)) return { text, next };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`never saw ${pattern} in ${JSON.stringify(text)}`);
}

describe("shells", () => {
  it("runs commands on a PTY and renders what a person would see", async () => {
    const id = await open();
    const prompt = await readUntil(id, /[#$] ?$/m);
    await client().request("shell_write", { id, input: "printf 'abc\\rX\\n'; tty\n" });
    const after = await readUntil(id, /\/dev\/pts/, prompt.next);
    expect(after.text).toContain("Xbc");
    expect(after.text).not.toContain("\r");
    expect(after.text).not.toContain("\u001b");
    const raw = await client().shellRead({ id, cursor: prompt.next });
    expect(raw.text).toContain("abc\rX");
    expect(raw.cursor).toBe(prompt.next);
    expect(raw.next_cursor).toBe(raw.cursor + Buffer.byteLength(raw.text));
    await client().request("shell_close", { id });
  });

  it("pages raw output with cursors and never splits a character", async () => {
    const id = await open();
    await client().request("shell_write", { id, input: "printf 'ééééé\\n'\n" });
    await readUntil(id, /éééé/);
    let cursor = 0;
    let all = "";
    for (let i = 0; i < 10_000; i++) {
      const read = await client().shellRead({ id, cursor, max_chars: 7 });
      all += read.text;
      if (read.next_cursor === cursor) break;
      expect([...read.text].length).toBeLessThanOrEqual(7);
      cursor = read.next_cursor;
    }
    expect(all).toContain("ééééé");
    expect(all).not.toContain("\uFFFD");
    const past = await rejection(client().shellRead({ id, cursor: cursor + 1000 }));
    expect(past.message).toMatch(/past the end/);
    await client().request("shell_close", { id });
  });

  it("interrupts the foreground job, not the shell", async () => {
    const id = await open();
    const prompt = await readUntil(id, /[#$] ?$/m);
    await client().request("shell_write", { id, input: "sleep 100; echo after-$((2+3))\n" });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const signalled = await client().request("shell_signal", { id, signal: "INT" });
    expect(signalled.process_group).not.toBe(signalled.shell.pid);
    await client().request("shell_write", { id, input: "echo alive-$((6*7))\n" });
    const after = await readUntil(id, /alive-42/, prompt.next);
    expect(after.text).not.toContain("after-5");
    expect(signalled.shell.state).toBe("running");
    await client().request("shell_close", { id });
  });

  it("redacts secrets as they are printed, even one byte at a time", async () => {
    await client().request("secrets_set", {
      secrets: { TOKEN: Buffer.from("tok-3141592653").toString("base64") },
    });
    expect(fs.readFileSync(`${process.env.PYRO_AGENT_SECRETS_DIR}/TOKEN`, "utf8")).toBe(
      "tok-3141592653",
    );
    const id = await open({ secret_env: { MY_TOKEN: "TOKEN" } });
    await client().request("shell_write", {
      id,
      input: `echo "$MY_TOKEN"; printf '%s' "$MY_TOKEN" | while IFS= read -r -n1 c; do printf '%s' "$c"; sleep 0.01; done; echo; echo done-$((1+1))\n`,
    });
    const plain = await readUntil(id, /done-2/);
    expect(plain.text).not.toContain("tok-3141592653");
    expect(plain.text.split(REDACTED).length).toBeGreaterThanOrEqual(3);
    const raw = await client().shellRead({ id, cursor: 0 });
    expect(raw.text).not.toContain("3141592653");
    await client().request("shell_close", { id });
    await client().request("secrets_set", { secrets: {} });
  });

  it("keeps an exited shell readable, refuses input to it, and forgets it once closed", async () => {
    const id = await open();
    await client().request("shell_write", { id, input: "echo bye; exit 3\n" });
    for (let i = 0; i < 50; i++) {
      const list = await client().request("shell_list", {});
      if (list.shells.find((s) => s.id === id)?.state === "exited") break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const read = await client().shellRead({ id, plain: true });
    expect(read.shell.state).toBe("exited");
    expect(read.shell.exit_code).toBe(3);
    expect(read.text).toContain("bye");
    const write = await rejection(client().request("shell_write", { id, input: "x\n" }));
    expect(write.code).toBe(ErrorCodes.ShellClosed);
    await client().request("shell_close", { id });
    const gone = await rejection(client().shellRead({ id }));
    expect(gone.code).toBe(ErrorCodes.ShellNotFound);
  });

  it("ends what the shell started when it is closed, background jobs included", async () => {
    const id = await open();
    await client().request("shell_write", {
      id,
      input: "nohup sleep 300 >/dev/null 2>&1 & (trap '' HUP; exec sleep 301) & echo pids-$!-\n",
    });
    const shown = await readUntil(id, /pids-\d+-/);
    const hupIgnorer = Number(/pids-(\d+)-/.exec(shown.text)![1]);
    expect(pidGone(hupIgnorer)).toBe(false);
    await client().request("shell_close", { id });
    await waitFor(() => pidGone(hupIgnorer), "the HUP-ignoring job to be killed");
  });

  it("reads at least one whole character however small max_chars is", async () => {
    const id = await open();
    await client().request("shell_write", { id, input: "printf '\\342\\202\\254\\n'\n" });
    const euro = await readUntil(id, /€/);
    let cursor = 0;
    let all = "";
    for (let i = 0; i < 5000 && cursor < euro.next; i++) {
      const read = await client().shellRead({ id, cursor, max_chars: 1 });
      expect(read.next_cursor).toBeGreaterThan(cursor);
      all += read.text;
      cursor = read.next_cursor;
    }
    expect(all).toContain("€");
    await client().request("shell_close", { id });
  });

  it("gets past a broken character instead of waiting for its rest forever", async () => {
    const id = await open();
    await client().request("shell_write", {
      id,
      input: "printf 'x\\342ab\\n'; printf 'end\\342'; exit 0\n",
    });
    for (let i = 0; i < 100; i++) {
      const list = await client().request("shell_list", {});
      if (list.shells.find((s) => s.id === id)?.state === "exited") break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    let cursor = 0;
    let all = "";
    for (let i = 0; i < 5000; i++) {
      const read = await client().shellRead({ id, cursor, max_chars: 1 });
      all += read.text;
      if (!read.truncated) break;
      expect(read.next_cursor).toBeGreaterThan(cursor);
      cursor = read.next_cursor;
    }
    expect(all).toContain("x\uFFFDab");
    expect(all).toMatch(/end\uFFFD/);
    await client().request("shell_close", { id });
  });

  it("says it is idle once the shell has been quiet that long", async () => {
    const id = await open();
    await client().request("shell_write", { id, input: "echo quiet\n" });
    const started = Date.now();
    const quiet = await client().shellRead({ id, wait_for_idle_ms: 200 });
    expect(quiet.idle).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    await client().request("shell_close", { id });
  });

  it("drops the oldest output when nobody reads, and says how much", async () => {
    const id = await open();
    await client().request("shell_write", {
      id,
      input: "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo end-$((3*3))\n",
    });
    await readUntil(id, /end-9/, 0);
    const raw = await client().shellRead({ id, cursor: 0, max_chars: 100 });
    expect(raw.dropped_bytes).toBeGreaterThan(1_000_000);
    expect(raw.cursor).toBe(raw.dropped_bytes);
    expect(raw.truncated).toBe(true);
    expect(raw.text).toMatch(/^x+$/);
    await client().request("shell_close", { id });
  });

  it("renders a full-screen program's screen", async () => {
    const id = await open();
    await client().request("shell_write", {
      id,
      input: "printf '\\033[?1049h\\033[2J\\033[3;5Hfull-screen\\033[1;1Htop-left'; sleep 5\n",
    });
    const screen = await readUntil(id, /full-screen/);
    const read = await client().shellRead({ id, cursor: screen.next, plain: true });
    expect(read.screen).toBe("alternate");
    expect(read.text.split("\n").slice(0, 3)).toEqual(["top-left", "", "    full-screen"]);
    await client().request("shell_signal", { id, signal: "INT" });
    await client().request("shell_close", { id });
  });
});
