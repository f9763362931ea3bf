import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ErrorCodes, PyroError } from "../errors.js";
import type { WorkspaceRecord } from "../records/store.js";
import { REDACTED, Redactor } from "../secrets/redaction.js";
import { readSecretOptions, redactError, secretEnvFor } from "./secrets.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-secrets-test-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

function thrown(fn: () => unknown): PyroError {
  try {
    fn();
  } catch (error) {
    return error as PyroError;
  }
  throw new Error("did not throw");
}

describe("readSecretOptions", () => {
  it("takes literals, NAME=VALUE lists, files, and bare names from the environment", () => {
    process.env.PYRO_TEST_SECRET = "from-the-env";
    const values = readSecretOptions({
      secrets: ["A=alpha-1", "PYRO_TEST_SECRET", "EQ=x=y=z1"],
      secretFiles: [`F=${file("f", "file-value\n")}`],
    });
    expect(values).toEqual({
      A: "alpha-1",
      PYRO_TEST_SECRET: "from-the-env",
      EQ: "x=y=z1",
      F: "file-value\n",
    });
    expect(readSecretOptions({ secrets: { B: "beta-2" } })).toEqual({ B: "beta-2" });
  });

  it("refuses bad names, duplicates, missing, large and binary files with usage errors", () => {
    const cases: [Parameters<typeof readSecretOptions>[0], RegExp][] = [
      [{ secrets: ["9X=value"] }, /the 1st --secret: the part before '=' is not a valid name/],
      [{ secrets: { "9X": "value" } }, /not a valid name/],
      [{ secrets: ["A=aaaa"], secretFiles: [`A=${file("a", "aaaa")}`] }, /given twice/],
      [{ secretFiles: ["M=/nonexistent/x"] }, /does not exist/],
      [{ secretFiles: [`L=${file("l", "x".repeat(64 * 1024 + 1))}`] }, /64 KiB/],
      [{ secretFiles: [`B=${file("b", Buffer.from([0xff, 0xfe, 0x00, 0x41]))}`] }, /not UTF-8/],
      [{ secretFiles: ["NOPATH"] }, /NAME=PATH/],
      [{ secrets: ["UNSET_PYRO_SECRET_XYZ"] }, /not shown, in case it is a value/],
      [{ secrets: ["ghp-looks-like-a-token"] }, /not shown, in case it is a value/],
      [{ secrets: ["S=abc"] }, /the 1st --secret is shorter than 4/],
      [{ secrets: ["A=aaaa", "c2stbGl2ZS1hYmNk=="] }, /the 2nd --secret is shorter than 4/],
    ];
    for (const [options, message] of cases) {
      const error = thrown(() => readSecretOptions(options));
      expect(error.code).toBe(ErrorCodes.UsageError);
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain("ghp-looks");
      expect(error.message).not.toContain("c2st");
    }
  });
});

describe("secretEnvFor", () => {
  const record = { id: "ws_000000000001", name: "app", secrets: ["API", "DB"] } as WorkspaceRecord;

  it("maps NAME and NAME=VAR to variable → secret", () => {
    expect(secretEnvFor(record, ["API", "DB=DATABASE_URL"])).toEqual({
      API: "API",
      DATABASE_URL: "DB",
    });
    expect(secretEnvFor(record, { TOKEN: "API" })).toEqual({ TOKEN: "API" });
    expect(secretEnvFor(record, [])).toBeUndefined();
  });

  it("names the workspace's secrets when one is unknown", () => {
    const error = thrown(() => secretEnvFor(record, ["NOPE"]));
    expect(error.code).toBe(ErrorCodes.SecretNotFound);
    expect(error.fix).toEqual({ kind: "find_secret", workspace: "app", known: ["API", "DB"] });
    expect(thrown(() => secretEnvFor(record, ["API=1BAD"])).code).toBe(ErrorCodes.UsageError);
  });
});

describe("redactError", () => {
  it("redacts message, hint, fix and details, keeping the code", () => {
    const redactor = new Redactor(["hunter2hunter2"]);
    const error = new PyroError(ErrorCodes.ServiceFailed, "failed: hunter2hunter2", {
      hint: "see hunter2hunter2",
      details: { tail: ["x hunter2hunter2"] },
    });
    const out = redactError(redactor, error) as PyroError;
    expect(out.code).toBe(ErrorCodes.ServiceFailed);
    expect(JSON.stringify(out.toJSON())).not.toContain("hunter2");
    expect(out.message).toBe(`failed: ${REDACTED}`);
  });
});
