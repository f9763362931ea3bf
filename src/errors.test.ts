import { describe, expect, it } from "vitest";
import {
  ErrorCodes,
  PyroError,
  exitCodeFor,
  isPyroError,
  toPyroError,
  type ErrorCode,
} from "./errors.js";

describe("exitCodeFor", () => {
  it("maps usage_error to 2", () => {
    expect(exitCodeFor(new PyroError(ErrorCodes.UsageError, "bad flag"))).toBe(2);
  });

  it.each(Object.values(ErrorCodes).filter((code) => code !== ErrorCodes.UsageError))(
    "maps %s to 1",
    (code) => {
      expect(exitCodeFor(new PyroError(code, "failed"))).toBe(1);
    },
  );
});

describe("ErrorCodes", () => {
  it("are unique snake_case strings", () => {
    const codes: ErrorCode[] = Object.values(ErrorCodes);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/);
  });

  it("include the codes the protocol layer relies on", () => {
    expect(ErrorCodes.VmDied).toBe("vm_died");
    expect(ErrorCodes.GuestProtocolError).toBe("guest_protocol_error");
    expect(ErrorCodes.GuestError).toBe("guest_error");
    expect(ErrorCodes.UsageError).toBe("usage_error");
  });
});

describe("PyroError", () => {
  it("carries code, message, hint, details and cause", () => {
    const cause = new Error("root cause");
    const error = new PyroError(ErrorCodes.Busy, "locked", {
      hint: "wait",
      details: { path: "/x" },
      cause,
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("PyroError");
    expect(error.code).toBe("busy");
    expect(error.message).toBe("locked");
    expect(error.hint).toBe("wait");
    expect(error.details).toEqual({ path: "/x" });
    expect(error.cause).toBe(cause);
    expect(error.stack).toContain("locked");
  });

  it("has no cause, hint or details unless given", () => {
    const error = new PyroError(ErrorCodes.Internal, "x");
    expect(error.hint).toBeUndefined();
    expect(error.details).toBeUndefined();
    expect("cause" in error).toBe(false);
  });

  it("serialises to JSON without absent fields", () => {
    expect(JSON.parse(JSON.stringify(new PyroError(ErrorCodes.VmDied, "gone")))).toEqual({
      code: "vm_died",
      message: "gone",
    });
    const full = new PyroError(ErrorCodes.UsageError, "bad", {
      hint: "try --help",
      details: { flag: "--x" },
      cause: new Error("not serialised"),
    });
    expect(full.toJSON()).toEqual({
      code: "usage_error",
      message: "bad",
      hint: "try --help",
      details: { flag: "--x" },
    });
  });
});

describe("isPyroError", () => {
  it("tells PyroErrors from the rest", () => {
    expect(isPyroError(new PyroError(ErrorCodes.Internal, "x"))).toBe(true);
    expect(isPyroError(new Error("x"))).toBe(false);
    expect(isPyroError({ code: "usage_error", message: "x" })).toBe(false);
    expect(isPyroError(undefined)).toBe(false);
  });
});

describe("toPyroError", () => {
  it("returns a PyroError unchanged", () => {
    const error = new PyroError(ErrorCodes.UsageError, "x");
    expect(toPyroError(error)).toBe(error);
  });

  it("wraps an Error as internal_error, keeping message and cause", () => {
    const original = new TypeError("boom");
    const wrapped = toPyroError(original);
    expect(wrapped).toBeInstanceOf(PyroError);
    expect(wrapped.code).toBe(ErrorCodes.Internal);
    expect(wrapped.message).toBe("boom");
    expect(wrapped.cause).toBe(original);
    expect(exitCodeFor(wrapped)).toBe(1);
  });

  it.each([
    ["a string", "just text", "just text"],
    ["a number", 42, "42"],
    ["undefined", undefined, "undefined"],
    ["null", null, "null"],
    ["an object", { a: 1 }, "[object Object]"],
  ])("wraps %s", (_name, thrown, message) => {
    const wrapped = toPyroError(thrown);
    expect(wrapped.code).toBe(ErrorCodes.Internal);
    expect(wrapped.message).toBe(message);
    expect(wrapped.cause).toBe(thrown);
  });
});
