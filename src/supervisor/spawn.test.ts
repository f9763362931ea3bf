import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolvePaths } from "../config/paths.js";
import { processAlive } from "../util/procs.js";
import { startSupervisor } from "./spawn.js";

/**
 * A stand-in supervisor bundle: writes its pid, and with --after-go answers
 * ready only after "go" on stdin (what the real one does before reading the
 * record); it then lingers like a real supervisor.
 */
const FAKE = `
const fs = require("node:fs");
const [, , , id, flag] = process.argv;
fs.writeFileSync(process.env.FAKE_PID_FILE, String(process.pid));
const ready = () => { process.stdout.write(JSON.stringify({ ok: true }) + "\\n"); setTimeout(() => {}, 60000); };
if (flag !== "--after-go") ready();
else {
  let said = "";
  process.stdin.on("data", (c) => { said += c; if (said.startsWith("go\\n")) ready(); });
  process.stdin.on("end", () => process.exit(0));
}
`;

let dir: string;
const saved = { ...process.env };
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-spawn-"));
  fs.writeFileSync(path.join(dir, "fake.cjs"), FAKE);
  process.env.PYRO_SUPERVISOR_BUNDLE = path.join(dir, "fake.cjs");
  process.env.FAKE_PID_FILE = path.join(dir, "pid");
});
afterEach(() => {
  const pid = Number(fs.readFileSync(path.join(dir, "pid"), "utf8"));
  if (processAlive(pid)) process.kill(pid, "SIGKILL");
  process.env = { ...saved };
  fs.rmSync(dir, { recursive: true, force: true });
});

const pidOf = () => Number(fs.readFileSync(path.join(dir, "pid"), "utf8"));

describe("startSupervisor with a gate", () => {
  it("starts the process at once and lets it go once the gate resolves", async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const started = startSupervisor(
      resolvePaths({ PYRO_HOME: dir }),
      "ws_1",
      path.join(dir, "log"),
      gate,
    );
    // The process is up (it wrote its pid) while the gate is still shut.
    for (let i = 0; i < 200 && !fs.existsSync(path.join(dir, "pid")); i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(processAlive(pidOf())).toBe(true);
    open();
    await expect(started).resolves.toBeUndefined();
  });

  it("kills the process and rejects with the gate's error when the gate fails", async () => {
    const gate = new Promise<void>((_, reject) =>
      setTimeout(() => reject(new Error("the copy failed")), 500),
    );
    await expect(
      startSupervisor(resolvePaths({ PYRO_HOME: dir }), "ws_1", path.join(dir, "log"), gate),
    ).rejects.toThrow("the copy failed");
    for (let i = 0; i < 100 && processAlive(pidOf()); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(processAlive(pidOf())).toBe(false);
  });
});
