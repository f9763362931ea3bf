import { describe, expect, it } from "vitest";
import { REDACTED, Redactor, redactionPatterns } from "./redaction.js";
import { secretNameProblem, secretValueProblem } from "./spec.js";

describe("Redactor", () => {
  const redactor = new Redactor(["hunter22", "s3cr3t-token"]);

  it("replaces every occurrence in a text", () => {
    expect(redactor.redact("a hunter22 b hunter22 s3cr3t-token")).toBe(
      `a ${REDACTED} b ${REDACTED} ${REDACTED}`,
    );
    expect(redactor.redact("nothing here")).toBe("nothing here");
  });

  it("replaces a secret that contains another whole", () => {
    const r = new Redactor(["abcd", "xxabcdxx"]);
    expect(r.redact("1 xxabcdxx 2 abcd")).toBe(`1 ${REDACTED} 2 ${REDACTED}`);
  });

  it("redacts strings inside objects and arrays, and leaves other values", () => {
    const out = redactor.redactDeep({ a: ["x hunter22"], b: { c: "s3cr3t-token" }, n: 3, z: null });
    expect(out).toEqual({ a: [`x ${REDACTED}`], b: { c: REDACTED }, n: 3, z: null });
  });

  it("knows a file's final newline is not part of the value, and a terminal's \\r\\n", () => {
    expect(redactionPatterns("token-1\n")).toEqual({ whole: ["token-1"], lines: [] });
    const pem = "-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----\n";
    const r = new Redactor([pem]);
    expect(r.redact(`x ${pem.replace(/\n/g, "\r\n")}`)).not.toContain("AAAABBBBCCCC");
    expect(r.redact("head: AAAABBBBCCCC")).toBe(`head: ${REDACTED}`);
  });

  it("catches a value split across chunks, however it is cut", () => {
    const text = "before hunter22 middle s3cr3t-token after";
    for (let size = 1; size <= text.length; size++) {
      const stream = redactor.stream();
      const out: Buffer[] = [];
      for (let i = 0; i < text.length; i += size)
        out.push(stream.push(Buffer.from(text.slice(i, i + size))));
      out.push(stream.end());
      expect(Buffer.concat(out).toString()).toBe(`before ${REDACTED} middle ${REDACTED} after`);
    }
  });

  it("holds back only what may still become a secret, and hands it on when it does not", () => {
    const stream = redactor.stream();
    expect(stream.push(Buffer.from("prompt$ hunt")).toString()).toBe("prompt$ ");
    expect(stream.pending).toBe(4);
    expect(stream.push(Buffer.from("ing")).toString()).toBe("hunting");
    expect(stream.pending).toBe(0);
    expect(stream.push(Buffer.from("s3c")).toString()).toBe("");
    expect(stream.end().toString()).toBe("s3c");
  });

  it("waits for a longer secret that starts like a shorter one", () => {
    const r = new Redactor(["tok1", "tok1-very-secret-suffix"]);
    const text = "val=tok1-very-secret-suffix and tok1 alone";
    for (let size = 1; size <= text.length; size++) {
      const stream = r.stream();
      const out: Buffer[] = [];
      for (let i = 0; i < text.length; i += size)
        out.push(stream.push(Buffer.from(text.slice(i, i + size))));
      out.push(stream.end());
      expect(Buffer.concat(out).toString()).toBe(`val=${REDACTED} and ${REDACTED} alone`);
    }
    const pem = new Redactor(["abcdefghij\nxyz9"]);
    const stream = pem.stream();
    const out = [stream.push(Buffer.from("k=abcdefghij")), stream.push(Buffer.from("\nxyz9\n"))];
    expect(Buffer.concat([...out, stream.end()]).toString()).toBe(`k=${REDACTED}\n`);
  });

  it("masks the start of a secret where output was cut", () => {
    const r = new Redactor(["SUPERSECRETTOKEN12345"]);
    expect(r.redactBytes(Buffer.from("x SUPERSECRETTOKEN1234"), { cut: true }).toString()).toBe(
      `x ${REDACTED}`,
    );
    expect(r.redactBytes(Buffer.from("x SUP"), { cut: true }).toString()).toBe("x SUP");
    expect(r.redactBytes(Buffer.from("x SUPERSECRET")).toString()).toBe("x SUPERSECRET");
  });

  it("redacts overlapping secrets as one, whole", () => {
    const r = new Redactor(["tok1", "k1-secret-long"]);
    expect(r.redact("x tok1-secret-long y")).toBe(`x ${REDACTED} y`);
    const stream = r.stream();
    const out = [stream.push(Buffer.from("x to")), stream.push(Buffer.from("k1-sec"))];
    out.push(stream.push(Buffer.from("ret-long y")), stream.end());
    expect(Buffer.concat(out).toString()).toBe(`x ${REDACTED} y`);
  });

  it("redacts megabytes of hostile output (repeated secrets, near-misses) in one pass", () => {
    const pem = Array.from({ length: 50 }, (_, i) => `line-${i}-${"A".repeat(58)}`).join("\n");
    const r = new Redactor(["aaaaaaaab", "hunter2hunter2", pem]);
    const hostile = Buffer.concat([
      Buffer.from("hunter2hunter2 ".repeat(100_000)),
      Buffer.alloc(1024 * 1024, "a"),
    ]);
    const out = r.redactBytes(hostile).toString();
    expect(out.startsWith(`${REDACTED} ${REDACTED} `)).toBe(true);
    expect(out.split(REDACTED).length - 1).toBe(100_000);
    expect(out.endsWith("a".repeat(1024))).toBe(true);
  });

  it("passes everything through when there are no secrets", () => {
    const none = new Redactor([]);
    expect(none.active).toBe(false);
    const chunk = Buffer.from("anything");
    expect(none.stream().push(chunk)).toBe(chunk);
    expect(none.redact("hunter22")).toBe("hunter22");
  });
});

describe("secret names and values", () => {
  it("accepts environment-variable names only", () => {
    expect(secretNameProblem("API_TOKEN")).toBeUndefined();
    expect(secretNameProblem("_x1")).toBeUndefined();
    expect(secretNameProblem("1ABC")).toMatch(/not a valid name/);
    expect(secretNameProblem("A-B")).toMatch(/not a valid name/);
    expect(secretNameProblem("A".repeat(65))).toMatch(/longer than 64/);
  });

  it("refuses values that are too large, too short or not text, without quoting them", () => {
    expect(secretValueProblem("T", "abcd")).toBeUndefined();
    const big = secretValueProblem("T", "x".repeat(64 * 1024 + 1));
    expect(big).toMatch(/more than the 64 KiB/);
    expect(big).not.toContain("xxxx");
    expect(secretValueProblem("T", "abc\n")).toMatch(/shorter than 4/);
    expect(secretValueProblem("T", "ab\0cd")).toMatch(/NUL/);
  });
});
