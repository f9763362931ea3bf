import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  isQemuOf,
  killQemu,
  liveRecords,
  readRecord,
  reapOrphans,
  recordPath,
  writeRecord,
  type VmRecord,
} from "./registry.js";

let vmsDir: string;
beforeEach(() => {
  vmsDir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-registry-test-"));
});
afterEach(() => {
  fs.rmSync(vmsDir, { recursive: true, force: true });
});

/** The pid of a process that has exited and been reaped. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  return Number(child.stdout);
}

function makeVm(id: string, ownerPid: number, qemuPid: number | null = null): VmRecord {
  const dir = path.join(vmsDir, id);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "overlay.qcow2"), "x");
  const record: VmRecord = {
    id,
    dir,
    owner_pid: ownerPid,
    qemu_pid: qemuPid,
    created_at: new Date().toISOString(),
  };
  writeRecord(record);
  return record;
}

function age(dir: string, ms: number): void {
  const then = new Date(Date.now() - ms);
  fs.utimesSync(dir, then, then);
}

describe("records", () => {
  it("round-trip through vm.json", () => {
    const record = makeVm("vm-a", process.pid, 1234);
    expect(recordPath(record.dir)).toBe(path.join(record.dir, "vm.json"));
    expect(readRecord(record.dir)).toEqual(record);
    expect(fs.statSync(recordPath(record.dir)).mode & 0o777).toBe(0o600);
    // Written atomically: no temp files left beside it.
    expect(fs.readdirSync(record.dir).sort()).toEqual(["overlay.qcow2", "vm.json"]);
  });

  it("a missing or corrupt record reads as undefined", () => {
    const dir = path.join(vmsDir, "broken");
    fs.mkdirSync(dir);
    expect(readRecord(dir)).toBeUndefined();
    fs.writeFileSync(recordPath(dir), "{not json");
    expect(readRecord(dir)).toBeUndefined();
  });
});

describe("reapOrphans", () => {
  it("removes a VM whose owner is dead and keeps one whose owner is alive", () => {
    makeVm("dead-owner", deadPid());
    makeVm("live-owner", process.pid);
    expect(reapOrphans(vmsDir)).toEqual(["dead-owner"]);
    expect(fs.existsSync(path.join(vmsDir, "dead-owner"))).toBe(false);
    expect(fs.existsSync(path.join(vmsDir, "live-owner", "vm.json"))).toBe(true);
    expect(reapOrphans(vmsDir)).toEqual([]);
  });

  it("removes a VM whose owner pid cannot exist", () => {
    makeVm("impossible", 999999999);
    expect(reapOrphans(vmsDir)).toEqual(["impossible"]);
    expect(fs.readdirSync(vmsDir)).toEqual([]);
  });

  it("keeps a fresh directory without a record (a VM being created)", () => {
    fs.mkdirSync(path.join(vmsDir, "creating"));
    expect(reapOrphans(vmsDir)).toEqual([]);
    expect(fs.existsSync(path.join(vmsDir, "creating"))).toBe(true);
  });

  it("removes an old directory without a record", () => {
    const dir = path.join(vmsDir, "abandoned");
    fs.mkdirSync(dir);
    age(dir, 10 * 60_000);
    expect(reapOrphans(vmsDir)).toEqual(["abandoned"]);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it("removes an old directory with a corrupt record", () => {
    const dir = path.join(vmsDir, "corrupt");
    fs.mkdirSync(dir);
    fs.writeFileSync(recordPath(dir), "garbage");
    age(dir, 10 * 60_000);
    expect(reapOrphans(vmsDir)).toEqual(["corrupt"]);
  });

  it("kills the orphan's QEMU before removing its directory", async () => {
    const dir = path.join(vmsDir, "with-qemu");
    fs.mkdirSync(dir);
    // A stand-in whose command line looks like this VM's QEMU.
    const fakeQemu = spawn(
      process.execPath,
      ["-e", "setInterval(() => {}, 1000)", "qemu-system-x86_64", `${dir}/agent.sock`],
      { stdio: "ignore" },
    );
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      fakeQemu.on("exit", (_code, signal) => resolve(signal)),
    );
    try {
      await new Promise((resolve) => fakeQemu.once("spawn", resolve));
      expect(isQemuOf(fakeQemu.pid!, dir)).toBe(true);
      expect(isQemuOf(fakeQemu.pid!, path.join(vmsDir, "other-vm"))).toBe(false);
      writeRecord({
        id: "with-qemu",
        dir,
        owner_pid: deadPid(),
        qemu_pid: fakeQemu.pid!,
        created_at: new Date().toISOString(),
      });
      expect(reapOrphans(vmsDir)).toEqual(["with-qemu"]);
      expect(await exited).toBe("SIGKILL");
      expect(fs.existsSync(dir)).toBe(false);
    } finally {
      fakeQemu.kill("SIGKILL");
    }
  });

  it("does not kill a live process that is not this VM's QEMU (pid reuse)", () => {
    // The dead owner's record names *this* process as its "QEMU": it must not be signalled.
    makeVm("reused", deadPid(), process.pid);
    expect(reapOrphans(vmsDir)).toEqual(["reused"]);
    // Still here to assert it.
    expect(fs.existsSync(path.join(vmsDir, "reused"))).toBe(false);
  });

  it("returns nothing for a missing vms directory", () => {
    expect(reapOrphans(path.join(vmsDir, "nope"))).toEqual([]);
  });
});

describe("liveRecords", () => {
  it("lists only VMs whose owner is alive", () => {
    makeVm("dead-owner", deadPid());
    const live = makeVm("live-owner", process.pid);
    fs.mkdirSync(path.join(vmsDir, "no-record"));
    expect(liveRecords(vmsDir)).toEqual([live]);
  });

  it("is empty for a missing vms directory", () => {
    expect(liveRecords(path.join(vmsDir, "nope"))).toEqual([]);
  });
});

describe("isQemuOf / killQemu", () => {
  it("rejects a process that is not a QEMU", () => {
    expect(isQemuOf(process.pid, vmsDir)).toBe(false);
  });

  it("rejects a pid that does not exist", () => {
    expect(isQemuOf(deadPid(), vmsDir)).toBe(false);
  });

  it("does nothing for a null pid or a non-QEMU pid", () => {
    expect(() => killQemu(null, vmsDir)).not.toThrow();
    expect(() => killQemu(process.pid, vmsDir)).not.toThrow(); // would kill us if it did not check
  });
});
