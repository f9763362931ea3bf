import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { encodeOutput, shellQuote, toShellArgv } from "./command.js";

describe("encodeOutput", () => {
  it.each([
    ["empty", ""],
    ["ascii", "hello\nworld\n"],
    ["multi-byte", "héllo ✓ 日本語 🚀"],
    ["control bytes and NUL", "a\u0000b\u0007c\t"],
  ])("passes valid UTF-8 (%s) through as text", (_name, text) => {
    expect(encodeOutput(Buffer.from(text, "utf8"))).toEqual({ text, encoding: "utf-8" });
  });

  it.each([
    ["a lone 0xff", [0xff]],
    ["binary", [0xff, 0x00, 0x01, 0x80, 0xfe]],
    ["a truncated multi-byte sequence", [0x68, 0x69, 0xe2, 0x9c]],
    ["an overlong encoding", [0xc0, 0xaf]],
    ["a UTF-16 surrogate", [0xed, 0xa0, 0x80]],
    ["latin-1", [...Buffer.from("café", "latin1")]],
  ])("encodes invalid UTF-8 (%s) as base64 that decodes back exactly", (_name, bytes) => {
    const input = Buffer.from(bytes);
    const encoded = encodeOutput(input);
    expect(encoded.encoding).toBe("base64");
    expect(Buffer.from(encoded.text, "base64").equals(input)).toBe(true);
  });

  it("does not replace invalid bytes with U+FFFD", () => {
    const encoded = encodeOutput(Buffer.from([0x61, 0xff, 0x62]));
    expect(encoded.text).not.toContain("\ufffd");
    expect(encoded.encoding).toBe("base64");
  });

  it("round-trips random binary exactly", () => {
    const input = Buffer.alloc(4096);
    for (let i = 0; i < input.length; i++) input[i] = (i * 7919 + 13) % 256;
    const encoded = encodeOutput(input);
    expect(encoded.encoding).toBe("base64");
    expect(Buffer.from(encoded.text, "base64").equals(input)).toBe(true);
  });

  // Regression (fixed): TextDecoder strips a leading BOM unless
  // constructed with ignoreBOM: true, so output starting with EF BB BF loses
  // those three bytes while still being reported as exact UTF-8 text.
  it("keeps a byte order mark", () => {
    const encoded = encodeOutput(Buffer.from([0xef, 0xbb, 0xbf, 0x41]));
    expect(encoded.encoding).toBe("utf-8");
    expect(Buffer.from(encoded.text, "utf8")).toEqual(Buffer.from([0xef, 0xbb, 0xbf, 0x41]));
  });
});

/** What `sh -lc LINE` passes to printf, one argument per line. */
function shellArgs(words: string[]): string[] {
  const argv = toShellArgv(["printf", "%s\\n", ...words]);
  const out = execFileSync(argv[0]!, argv.slice(1), {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/nonexistent" },
  });
  return out.split("\n").slice(0, -1);
}

describe("toShellArgv", () => {
  it("runs a single string as a shell command line", () => {
    expect(toShellArgv("echo $HOME | wc -c")).toEqual(["sh", "-lc", "echo $HOME | wc -c"]);
    expect(toShellArgv(["ls -la && pwd"])).toEqual(["sh", "-lc", "ls -la && pwd"]);
  });

  it("keeps the shell meaning of a single string", () => {
    const argv = toShellArgv("printf '%s\\n' a b | tr a-z A-Z");
    expect(execFileSync(argv[0]!, argv.slice(1), { encoding: "utf8" })).toBe("A\nB\n");
  });

  it("leaves plain words unquoted", () => {
    expect(toShellArgv(["ls", "-la", "/tmp/x.txt"])).toEqual(["sh", "-lc", "ls -la /tmp/x.txt"]);
  });

  it.each([
    ["spaces", ["two words", " leading", "trailing "]],
    ["quotes", ["it's", '"double"', "'", "''", "a'b'c"]],
    ["shell syntax", ["$HOME", "${PATH}", "$(id)", "`id`", "a;b", "a|b", "a&b", "a>b", "<c"]],
    ["globs", ["*", "?", "[a-z]", "~", "~root", "{a,b}"]],
    ["escapes", ["back\\slash", "\\n", "\\"]],
    ["comments and options", ["#not-a-comment", "-n", "--", "-e"]],
    ["newlines and tabs", ["a\tb", "tab\t"]],
    ["assignments", ["FOO=bar", "x=$y"]],
    ["unicode", ["héllo", "✓", "日本語"]],
    ["empty words", ["", "x", ""]],
  ])("gives back the exact argv through sh -lc (%s)", (_name, words) => {
    expect(shellArgs(words)).toEqual(words);
  });

  it("gives back a word with a newline exactly", () => {
    const argv = toShellArgv(["printf", "[%s]", "line1\nline2", "x"]);
    const out = execFileSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
    expect(out).toBe("[line1\nline2][x]");
  });

  it("quotes the first word too", () => {
    const argv = toShellArgv(["echo hi", "x"]);
    expect(argv[2]).toBe("'echo hi' x");
  });

  it.each([[[]], [""], ["   "], [["\t\n"]]])("refuses an empty command %j", (command) => {
    expect(() => toShellArgv(command as string | string[])).toThrow(/empty command/);
  });
});

describe("shellQuote", () => {
  it("leaves safe words alone", () => {
    for (const word of ["abc", "a-b_c", "/usr/bin/env", "x=1", "a@b", "1.5", "a,b", "+%:"]) {
      expect(shellQuote(word)).toBe(word);
    }
  });

  it("single-quotes anything else", () => {
    expect(shellQuote("")).toBe("''");
    expect(shellQuote("a b")).toBe("'a b'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });
});
