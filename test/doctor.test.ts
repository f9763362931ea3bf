/**
 * `pyro doctor` on this host: real acceleration verdict, a real boot and
 * exec, and failing checks that name their fix without hanging.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { DoctorReport } from "../src/daily-loop/doctor.js";
import { ROOT, runCli, runCliJson } from "./helpers.js";

describe("pyro doctor", () => {
  it("reports platform, QEMU, acceleration and proves boot and guest exec", async () => {
    const { code, json } = await runCliJson<DoctorReport>(["doctor"]);
    expect(json.qemu.version).toMatch(/^\d+\.\d+/);
    expect(["kvm", "tcg"]).toContain(json.acceleration?.accel);
    expect(json.acceleration?.reason.length).toBeGreaterThan(0);
    expect(json.capabilities.boot.ok).toBe(true);
    expect(json.capabilities.guest_exec.ok).toBe(true);
    // The boot check's guest has a network device and reaches pyro's egress proxy.
    expect(json.capabilities.network).toMatchObject({ ok: true });
    expect(json.capabilities.network.detail).toMatch(/reached pyro's egress proxy/);
    expect(json.environments.find((e) => e.name === "debian:12")?.state).toBe("installed");
    expect(json.checks.every((c) => c.ok)).toBe(true);
    expect(json.ok).toBe(true);
    expect(code).toBe(0);
  });

  it("prints one line per check for people", async () => {
    const result = await runCli(["doctor", "--skip-boot"]);
    const text = result.stdout.toString();
    expect(text).toMatch(/^pyro \d+\.\d+\.\d+ on /);
    expect(text).toMatch(/^ok {3}qemu: .*qemu-system-x86_64/m);
    expect(text).toMatch(/^ok {3}acceleration: (KVM|software emulation \(TCG\)): /m);
  });

  it("exits 0 on a fresh machine: a cold cache is a state with advice, not a failure", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-doctor-cold-"));
    try {
      const { code, json, stderr } = await runCliJson<
        DoctorReport & { daily_loop: { readiness: string } }
      >(["doctor", "--skip-boot", "--environment", "debian:12"], { PYRO_HOME: home });
      expect(code, stderr).toBe(0);
      expect(json.ok).toBe(true);
      expect(json.daily_loop.readiness).toBe("cold");
      const notes = json.checks.filter((c) => c.note).map((c) => c.name);
      expect(notes).toEqual(expect.arrayContaining(["environments", "daily loop (debian:12)"]));
      expect(json.checks.find((c) => c.name === "environments")?.fix).toContain("pyro prepare");
      // Run from this checkout: a server started here would seed from it.
      expect(json.checks.find((c) => c.name === "project")?.detail).toContain(ROOT);
      const human = await runCli(["doctor", "--skip-boot", "--environment", "debian:12"], {
        PYRO_HOME: home,
      });
      expect(human.code).toBe(0);
      expect(human.stdout.toString()).toMatch(/^note daily loop \(debian:12\): cold/m);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it("names the fix for a broken QEMU and still answers", async () => {
    const { code, json } = await runCliJson<DoctorReport>(["doctor"], {
      PYRO_QEMU: "/nonexistent/qemu",
    });
    expect(code).toBe(1);
    const qemu = json.checks.find((c) => c.name === "qemu");
    expect(qemu?.ok).toBe(false);
    expect(qemu?.fix).toContain("pyro setup");
    expect(json.ok).toBe(false);
  });
});
