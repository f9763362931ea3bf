import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCodes, PyroError } from "../errors.js";
import { withLock } from "./lock.js";
import { processAlive } from "./procs.js";

let dir: string;
let lockPath: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-lock-test-"));
  lockPath = path.join(dir, "thing.lock");
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The pid of a process that has exited and been reaped. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  const pid = Number(child.stdout);
  expect(pid).toBeGreaterThan(0);
  return pid;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("processAlive", () => {
  it("is true for this process", () => {
    expect(processAlive(process.pid)).toBe(true);
  });

  it("is true for pid 1 (EPERM counts as alive when not root)", () => {
    expect(processAlive(1)).toBe(true);
  });

  it("is false for an exited process", () => {
    expect(processAlive(deadPid())).toBe(false);
  });

  it.each([0, -1, -process.pid, 1.5, Number.NaN, 999999999])("is false for %s", (pid) => {
    expect(processAlive(pid)).toBe(false);
  });
});

describe("withLock", () => {
  it("holds the lock file with our pid while fn runs, and removes it after", async () => {
    const seen = await withLock(lockPath, async () => {
      expect(fs.readFileSync(lockPath, "utf8")).toBe(String(process.pid));
      expect(fs.statSync(lockPath).mode & 0o777).toBe(0o600);
      return "result";
    });
    expect(seen).toBe("result");
    expect(fs.existsSync(lockPath)).toBe(false);
  });

  it("removes the lock file when fn throws, and rethrows", async () => {
    await expect(
      withLock(lockPath, async () => {
        throw new Error("inside");
      }),
    ).rejects.toThrow("inside");
    expect(fs.existsSync(lockPath)).toBe(false);
  });

  it("serialises two concurrent callers", async () => {
    const events: string[] = [];
    const firstEntered = deferred();
    const releaseFirst = deferred();
    let secondWaited = false;

    const first = withLock(lockPath, async () => {
      events.push("first:start");
      firstEntered.resolve();
      await releaseFirst.promise;
      events.push("first:end");
    });
    await firstEntered.promise;
    const second = withLock(
      lockPath,
      async () => {
        events.push("second:start");
        expect(fs.readFileSync(lockPath, "utf8")).toBe(String(process.pid));
        events.push("second:end");
      },
      { onWait: () => (secondWaited = true) },
    );
    // Let the second caller find the lock taken before the first one finishes.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events).toEqual(["first:start"]);
    expect(secondWaited).toBe(true);
    releaseFirst.resolve();
    await Promise.all([first, second]);
    expect(events).toEqual(["first:start", "first:end", "second:start", "second:end"]);
    expect(fs.existsSync(lockPath)).toBe(false);
  });

  it("never runs critical sections of many callers at once", async () => {
    let inside = 0;
    let maxInside = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        withLock(lockPath, async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await new Promise((resolve) => setTimeout(resolve, 5));
          order.push(i);
          inside--;
        }),
      ),
    );
    expect(maxInside).toBe(1);
    expect([...order].sort()).toEqual([0, 1, 2, 3]);
  });

  it("takes over a lock file left by a dead process", async () => {
    fs.writeFileSync(lockPath, String(deadPid()));
    let waited = false;
    const result = await withLock(
      lockPath,
      async () => {
        expect(fs.readFileSync(lockPath, "utf8")).toBe(String(process.pid));
        return 42;
      },
      { onWait: () => (waited = true), timeoutMs: 10_000 },
    );
    expect(result).toBe(42);
    expect(waited).toBe(true); // it found the stale file first
    expect(fs.existsSync(lockPath)).toBe(false);
  });

  it("takes over a lock file naming a pid that cannot exist", async () => {
    fs.writeFileSync(lockPath, "999999999\n");
    await expect(withLock(lockPath, async () => "ok", { timeoutMs: 10_000 })).resolves.toBe("ok");
  });

  it("takes over an old empty lock file (owner killed between create and write)", async () => {
    fs.writeFileSync(lockPath, "");
    const anHourAgo = new Date(Date.now() - 3600_000);
    fs.utimesSync(lockPath, anHourAgo, anHourAgo);
    await expect(withLock(lockPath, async () => "ok", { timeoutMs: 10_000 })).resolves.toBe("ok");
  });

  // Regression (fixed): the owner is parsed with Number(), giving NaN,
  // and the "still the same file" re-check compares NaN === NaN, which is
  // false, so a lock file with unparseable content is never removed and
  // every caller waits for the full timeout (30 minutes by default).
  it("takes over an old lock file with garbage in it", async () => {
    fs.writeFileSync(lockPath, "not a pid");
    const anHourAgo = new Date(Date.now() - 3600_000);
    fs.utimesSync(lockPath, anHourAgo, anHourAgo);
    await expect(withLock(lockPath, async () => "ok", { timeoutMs: 1000 })).resolves.toBe("ok");
  });

  // Regression (fixed): tryAcquire creates the lock file empty
  // (open "wx") and writes the pid afterwards. A second process that reads it
  // in between sees "" → Number("") = 0 → "dead owner", unlinks the live
  // lock and takes it: both now run their critical sections. Simulated here
  // with a just-created empty file.
  it("does not steal a just-created lock whose pid is not written yet", async () => {
    fs.writeFileSync(lockPath, "");
    let ran = false;
    const error = await withLock(
      lockPath,
      async () => {
        ran = true;
      },
      { timeoutMs: 300 },
    ).catch((e: unknown) => e);
    expect(ran).toBe(false);
    expect((error as PyroError).code).toBe(ErrorCodes.Busy);
  });

  it("times out with busy on a lock held by a live process", async () => {
    fs.writeFileSync(lockPath, String(process.pid));
    const error = await withLock(lockPath, async () => "never", {
      timeoutMs: 0,
      what: "the environment cache",
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PyroError);
    expect((error as PyroError).code).toBe(ErrorCodes.Busy);
    expect((error as PyroError).message).toMatch(/the environment cache/);
    expect((error as PyroError).hint).toContain(lockPath);
    // Someone else's lock is left alone.
    expect(fs.readFileSync(lockPath, "utf8")).toBe(String(process.pid));
  });

  it("fails instead of waiting when the lock directory does not exist", async () => {
    await expect(
      withLock(path.join(dir, "missing", "x.lock"), async () => "never"),
    ).rejects.toMatchObject({ code: "ENOENT" });
  });
});
