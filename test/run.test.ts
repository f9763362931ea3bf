/**
 * `pyro run` against real guests: the README's first command, exit codes,
 * live streaming, bounded and binary output, timeouts, resources, bad input,
 * and a killed CLI leaving nothing behind.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readRecord } from "../src/vm/registry.js";
import { pidAlive, runCli, runCliJson, sharedPaths, spawnCli, waitFor } from "./helpers.js";

interface RunPayload {
  environment: string;
  exit_code: number;
  stdout: string;
  stderr: string;
  stdout_encoding: string;
  stderr_encoding: string;
  timed_out: boolean;
  truncated: boolean;
  stdout_truncated: boolean;
  duration_ms: number;
  boot_ms: number;
  accel: string;
  vcpu_count: number;
  mem_mib: number;
}

describe("pyro run", () => {
  it("prints the guest's git --version (the README's first command)", async () => {
    const result = await runCli(["run", "debian:12", "--", "git", "--version"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toMatch(/^git version 2\.\d+\.\d+\n$/);
  });

  it("exits with the guest command's exit code and keeps stdout and stderr apart", async () => {
    const result = await runCli(["run", "--", "echo to-out; echo to-err >&2; exit 7"]);
    expect(result.code).toBe(7);
    expect(result.stdout.toString()).toBe("to-out\n");
    expect(result.stderr).toBe("to-err\n");
  });

  it("--json prints exactly the payload, and the exit code is still the command's", async () => {
    const { code, json } = await runCliJson<RunPayload>([
      "run",
      "debian:12",
      "--",
      "python3",
      "-c",
      "print('a  b'); import sys; sys.exit(3)",
    ]);
    expect(code).toBe(3);
    expect(json).toMatchObject({
      environment: "debian:12",
      exit_code: 3,
      stdout: "a  b\n",
      stderr: "",
      stdout_encoding: "utf-8",
      timed_out: false,
      truncated: false,
      vcpu_count: 1,
      mem_mib: 1024,
    });
    expect(["kvm", "tcg"]).toContain(json.accel);
    expect(json.boot_ms).toBeGreaterThan(0);
  });

  it("streams output live, before the command ends", async () => {
    const child = spawnCli(["run", "--", "echo first; sleep 4; echo second"]);
    const seen: string[] = [];
    let exited = false;
    child.on("exit", () => (exited = true));
    let firstWhileRunning = false;
    child.stdout!.on("data", (chunk: Buffer) => {
      seen.push(chunk.toString());
      if (seen.join("").includes("first") && !seen.join("").includes("second") && !exited)
        firstWhileRunning = true;
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(code).toBe(0);
    expect(seen.join("")).toBe("first\nsecond\n");
    expect(firstWhileRunning).toBe(true);
  });

  it("bounds 10 MB of output and marks it truncated", async () => {
    const { code, json } = await runCliJson<RunPayload>([
      "run",
      "--",
      "head -c 12000000 /dev/zero | tr '\\0' a; echo done >&2",
    ]);
    expect(code).toBe(0);
    expect(json.truncated).toBe(true);
    expect(json.stdout_truncated).toBe(true);
    expect(json.stdout.length).toBe(4 * 1024 * 1024);
    expect(json.stdout).toMatch(/^a+$/);
    expect(json.stderr).toBe("done\n");
  });

  it("keeps non-UTF-8 and binary output byte-exact", async () => {
    const command = "printf '\\377\\376bin\\000ary\\n'";
    const expected = Buffer.from([0xff, 0xfe, ...Buffer.from("bin"), 0, ...Buffer.from("ary\n")]);
    const raw = await runCli(["run", "--", command]);
    expect(raw.code).toBe(0);
    expect(raw.stdout.equals(expected)).toBe(true);
    const { json } = await runCliJson<RunPayload>(["run", "--", command]);
    expect(json.stdout_encoding).toBe("base64");
    expect(Buffer.from(json.stdout, "base64").equals(expected)).toBe(true);
  });

  it("kills a command that exceeds its timeout and reports timed_out", async () => {
    const { code, json } = await runCliJson<RunPayload>([
      "run",
      "--timeout-seconds",
      "2",
      "--",
      "sleep 300 & sleep 300",
    ]);
    expect(json.timed_out).toBe(true);
    expect(json.exit_code).toBe(137);
    expect(code).toBe(137);
  });

  it("gives the guest the vCPUs and memory asked for", async () => {
    const { json } = await runCliJson<RunPayload>([
      "run",
      "--vcpu-count",
      "2",
      "--mem-mib",
      "512",
      "--",
      "nproc; awk '/MemTotal/ {print $2}' /proc/meminfo; pwd",
    ]);
    const [cpus, memKib, cwd] = json.stdout.trim().split("\n");
    expect(cpus).toBe("2");
    expect(Number(memKib)).toBeGreaterThan(300 * 1024);
    expect(Number(memKib)).toBeLessThanOrEqual(512 * 1024);
    expect(cwd).toBe("/workspace");
    expect(json.vcpu_count).toBe(2);
  });

  it("--network gives the one-shot VM egress through the proxy; without it there is no device", async () => {
    const probe = "ls /sys/class/net | tr '\\n' ' '; echo \"$https_proxy\"";
    const on = await runCliJson<RunPayload & { network_policy: string }>([
      "run",
      "--network",
      "--",
      probe,
    ]);
    expect(on.json.stdout).toBe("eth0 lo http://10.0.2.100:3128\n");
    expect(on.json.network_policy).toBe("egress");
    const off = await runCliJson<RunPayload & { network_policy: string }>(["run", "--", probe]);
    expect(off.json.stdout).toBe("lo \n");
    expect(off.json.network_policy).toBe("off");
  });

  it("refuses an unknown environment with the catalog", async () => {
    const result = await runCli(["run", "debian:13", "--", "true"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: unknown environment "debian:13"/);
    expect(result.stderr).toContain("debian:12-base, debian:12, debian:12-build");
  });

  it("is a usage error (exit 2) without a command or with a bad option", async () => {
    expect((await runCli(["run", "debian:12"])).code).toBe(2);
    const bad = await runCli(["run", "--vcpu-count", "zero", "--", "true"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--vcpu-count must be a positive integer");
  });

  it("points at `pyro setup` when QEMU is missing", async () => {
    const result = await runCli(["run", "--", "true"], {
      PYRO_QEMU: "/nonexistent/qemu-system-x86_64",
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("pyro setup");
  });

  it("leaves no QEMU behind when the CLI is killed", async () => {
    const paths = sharedPaths();
    const before = new Set(fs.existsSync(paths.vms) ? fs.readdirSync(paths.vms) : []);
    const child = spawnCli(["run", "--", "sleep 600"]);
    let vmDir = "";
    let qemuPid = 0;
    await waitFor(
      () => {
        const fresh = (fs.existsSync(paths.vms) ? fs.readdirSync(paths.vms) : []).filter(
          (d) => !before.has(d),
        );
        for (const dir of fresh) {
          const record = readRecord(path.join(paths.vms, dir));
          if (record && record.owner_pid === child.pid && record.qemu_pid) {
            vmDir = record.dir;
            qemuPid = record.qemu_pid;
          }
        }
        return qemuPid !== 0;
      },
      120_000,
      "the VM to start",
    );
    // Let the guest get going, then kill the CLI without a chance to clean up.
    await new Promise((r) => setTimeout(r, 2000));
    child.kill("SIGKILL");
    await waitFor(
      () => !pidAlive(qemuPid) || isZombie(qemuPid),
      30_000,
      "QEMU to die with its owner",
    );
    // The next pyro command reaps what is left on disk.
    const result = await runCli(["run", "--", "true"]);
    expect(result.code).toBe(0);
    expect(fs.existsSync(vmDir)).toBe(false);
  });
});

function isZombie(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}
