/**
 * The fast daily loop on real guests: `pyro prepare` saves a warm image,
 * creates restore it (fresh clock, entropy and identity per workspace), and a
 * missing, damaged or mismatched snapshot never fails a create: it is
 * reported stale and a cold boot is used.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { resolvePaths } from "../src/config/paths.js";
import type { DoctorReport } from "../src/daily-loop/doctor.js";
import type { PrepareResult } from "../src/daily-loop/prepare.js";
import type { Workspace, WorkspaceExecResult } from "../src/workspaces/payloads.js";
import { copyEnvironmentInto, runCli, runCliJson, spawnCli, tempHome, waitFor } from "./helpers.js";

const cleanups: (() => Promise<unknown>)[] = [];
// Last registered first: workspaces go before the temporary home they live in.
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function create(env: NodeJS.ProcessEnv = {}): Promise<Workspace> {
  const { code, json, stderr } = await runCliJson<Workspace>(["workspace", "create"], env);
  if (code !== 0) throw new Error(`create failed: ${JSON.stringify(json)} ${stderr}`);
  cleanups.push(() => runCli(["workspace", "delete", json.id], env));
  return json;
}

async function exec(id: string, command: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { json } = await runCliJson<WorkspaceExecResult>(
    ["workspace", "exec", id, "--", command],
    env,
  );
  return json.stdout;
}

/** A PYRO_HOME holding a copy of the built debian:12 environment. */
function homeWithEnvironment(): { home: string; env: NodeJS.ProcessEnv } {
  const home = tempHome();
  copyEnvironmentInto(home, "debian:12");
  cleanups.push(async () => fs.rmSync(home, { recursive: true, force: true }));
  return { home, env: { PYRO_HOME: home } };
}

describe("warm images", () => {
  it("prepare makes the loop warm, and a second prepare returns at once saying so", async () => {
    const first = await runCliJson<PrepareResult>(["prepare", "debian:12"]);
    expect(first.code).toBe(0);
    expect(["prepared", "already_warm"]).toContain(first.json.status);
    if (first.json.status === "prepared") {
      expect(first.json.proof?.boot_kind).toBe("warm");
      expect(first.json.snapshot_bytes).toBeGreaterThan(0);
    }
    const second = await runCliJson<PrepareResult>(["prepare", "debian:12"]);
    expect(second.json).toMatchObject({ status: "already_warm", proof: null });
    const doctor = await runCliJson<DoctorReport>([
      "doctor",
      "--skip-boot",
      "--environment",
      "debian:12",
    ]);
    expect(doctor.json.daily_loop).toMatchObject({
      environment: "debian:12",
      readiness: "warm",
      fix: null,
    });
    expect(doctor.json.cache.warm_snapshot_bytes).toBeGreaterThan(0);
  });

  it("restores each workspace with its own identity, clock and entropy, on its own disk", async () => {
    await runCli(["prepare", "debian:12"]);
    const [a, b] = await Promise.all([create(), create()]);
    expect(a.boot_kind).toBe("warm");
    expect(b.boot_kind).toBe("warm");
    const probe =
      "hostname; date -u +%s; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo";
    const [outA, outB] = await Promise.all([exec(a.id, probe), exec(b.id, probe)]);
    const [hostA, clockA, randomA] = outA.trim().split("\n");
    const [hostB, , randomB] = outB.trim().split("\n");
    expect(hostA).toBe(a.id.replace("_", "-"));
    expect(hostB).toBe(b.id.replace("_", "-"));
    expect(Math.abs(Number(clockA) - Date.now() / 1000)).toBeLessThan(120);
    expect(randomA).not.toBe(randomB);
    // Both map the same snapshot RAM copy-on-write: what one writes to memory the other never sees.
    await exec(a.id, "head -c 8M /dev/urandom > /tmp/noise && echo a-only > /tmp/who");
    expect(await exec(b.id, "cat /tmp/who 2>/dev/null || echo none")).toBe("none\n");
    expect(await exec(a.id, "cat /tmp/who")).toBe("a-only\n");
    await exec(a.id, "echo mine > only-a.txt");
    expect(await exec(b.id, "test -e only-a.txt && echo shared || echo separate")).toBe(
      "separate\n",
    );
  });

  it("reset brings back a fresh machine with /workspace at the baseline or a named snapshot", async () => {
    await runCli(["prepare", "debian:12"]);
    const seed = fs.mkdtempSync(path.join(tempHome("pyro-reset-seed-"), "s"));
    fs.writeFileSync(path.join(seed, "app.txt"), "original\n");
    const created = await runCliJson<Workspace>([
      "workspace",
      "create",
      "--seed-path",
      seed,
      "--name",
      "resettable",
      "--label",
      "k=v",
    ]);
    const ws = created.json;
    cleanups.push(() => runCli(["workspace", "delete", ws.id]));
    await exec(ws.id, "echo changed > app.txt && touch /tmp/scratch /root/outside");
    const snap = await runCliJson<{ name: string }>([
      "workspace",
      "snapshot",
      "create",
      ws.id,
      "mid",
    ]);
    expect(snap.json.name).toBe("mid");
    await exec(ws.id, "echo later > later.txt");
    const pids = () =>
      JSON.parse(
        fs.readFileSync(
          path.join(resolvePaths(process.env).data, "workspaces", ws.id, "workspace.json"),
          "utf8",
        ),
      ) as { supervisor_pid: number; qemu_pid: number };
    const before = pids();

    const reset = await runCliJson<Workspace & { restored_from: string }>([
      "workspace",
      "reset",
      "resettable",
    ]);
    expect(reset.json).toMatchObject({
      id: ws.id,
      name: "resettable",
      labels: { k: "v" },
      state: "started",
      restored_from: "baseline",
      reset_count: 1,
      boot_kind: "warm",
    });
    expect(
      await exec(ws.id, "cat app.txt; ls; ls /tmp/scratch /root/outside 2>/dev/null | wc -l"),
    ).toBe("original\napp.txt\n0\n");
    // No standby (these tests turn them off): the running supervisor swapped in a new VM.
    expect(pids().supervisor_pid).toBe(before.supervisor_pid);
    expect(pids().qemu_pid).not.toBe(before.qemu_pid);
    const diff = await runCliJson<{ changed: boolean }>(["workspace", "diff", ws.id]);
    expect(diff.json.changed).toBe(false);
    const logs = await runCliJson<{ entries: { sequence: number }[] }>([
      "workspace",
      "logs",
      ws.id,
    ]);
    expect(logs.json.entries.map((e) => e.sequence)).toEqual([1]); // only the cat above: the journal started over

    const toMid = await runCliJson<Workspace & { restored_from: string }>([
      "workspace",
      "reset",
      ws.id,
      "--snapshot",
      "mid",
    ]);
    expect(toMid.json.restored_from).toBe("mid");
    expect(await exec(ws.id, "cat app.txt; ls")).toBe("changed\napp.txt\n");

    const list = await runCliJson<{ snapshots: { name: string; deletable: boolean }[] }>([
      "workspace",
      "snapshot",
      "list",
      ws.id,
    ]);
    expect(list.json.snapshots.map((s) => [s.name, s.deletable])).toEqual([
      ["baseline", false],
      ["mid", true],
    ]);
    const refuse = await runCli(["workspace", "snapshot", "delete", ws.id, "baseline"]);
    expect(refuse.code).toBe(1);
    expect((await runCli(["workspace", "snapshot", "delete", ws.id, "mid"])).code).toBe(0);
    const missing = await runCli(["workspace", "reset", ws.id, "--snapshot", "mid"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no snapshot "mid"');
    expect(missing.stderr).toContain("snapshots: baseline");

    // A stopped workspace resets through a new supervisor.
    await exec(ws.id, "echo again > app.txt");
    expect((await runCli(["workspace", "stop", ws.id])).code).toBe(0);
    const fromStopped = await runCliJson<Workspace>(["workspace", "reset", ws.id]);
    expect(fromStopped.json).toMatchObject({ state: "started", boot_kind: "warm" });
    expect(pids().supervisor_pid).not.toBe(before.supervisor_pid);
    expect(await exec(ws.id, "cat app.txt")).toBe("original\n");
  });

  it("forks a running workspace with its disk and memory; both run on separately", async () => {
    await runCli(["prepare", "debian:12"]);
    const source = await create();
    // 24 MiB of random bytes in tmpfs: pages a memory delta must carry exactly.
    await exec(
      source.id,
      "echo on-disk > f.txt; echo in-memory > /tmp/mem.txt; head -c 24M /dev/urandom > /tmp/noise; md5sum /tmp/noise > /tmp/noise.md5; (sleep 1000 &); true",
    );
    const forked = await runCliJson<Workspace & { forked_from: string }>([
      "workspace",
      "fork",
      source.id,
      "--name",
      "forked",
    ]);
    expect(forked.code).toBe(0);
    cleanups.push(() => runCli(["workspace", "delete", forked.json.id]));
    expect(forked.json).toMatchObject({
      name: "forked",
      state: "started",
      forked_from: source.id,
      boot_kind: "warm",
      // Restored from the warm image, so only the pages it changed were copied.
      boot_note: "restored from its parent's memory delta",
    });
    // /tmp is a tmpfs and the sleep a process: only a memory copy carries them over.
    expect(
      await exec(
        forked.json.id,
        "cat f.txt /tmp/mem.txt; pgrep -c -x sleep; hostname; md5sum -c /tmp/noise.md5",
      ),
    ).toBe(`on-disk\nin-memory\n1\n${forked.json.id.replace("_", "-")}\n/tmp/noise: OK\n`);
    // A fork of a fork: its RAM maps the same warm image, with its own changes on top.
    await exec(forked.json.id, "echo second > /tmp/second.txt");
    const again = await runCliJson<Workspace>(["workspace", "fork", forked.json.id]);
    cleanups.push(() => runCli(["workspace", "delete", again.json.id]));
    expect(again.json.boot_note).toBe("restored from its parent's memory delta");
    expect(
      await exec(again.json.id, "cat /tmp/mem.txt /tmp/second.txt; md5sum -c /tmp/noise.md5"),
    ).toBe("in-memory\nsecond\n/tmp/noise: OK\n");
    await runCli(["workspace", "delete", again.json.id]);
    await exec(source.id, "echo source-only > g.txt");
    await exec(forked.json.id, "echo fork-only > h.txt");
    expect(await exec(source.id, "ls")).toBe("f.txt\ng.txt\n");
    expect(await exec(forked.json.id, "ls")).toBe("f.txt\nh.txt\n");
    // A stopped workspace forks from its disk alone.
    await runCli(["workspace", "stop", source.id]);
    const fromDisk = await runCliJson<Workspace>(["workspace", "fork", source.id]);
    cleanups.push(() => runCli(["workspace", "delete", fromDisk.json.id]));
    expect(fromDisk.json.boot_kind).toBe("cold");
    expect(await exec(fromDisk.json.id, "ls; hostname")).toBe(
      `f.txt\ng.txt\n${fromDisk.json.id.replace("_", "-")}\n`,
    );
  });

  it("never fails a create on a damaged or mismatched snapshot: stale, then a cold boot", async () => {
    const { home, env } = homeWithEnvironment();
    const prepared = await runCliJson<PrepareResult>(["prepare"], env);
    expect(prepared.json.status).toBe("prepared");
    const warmDir = path.join(resolvePaths(env).cache, "warm", "debian_12-1c-1024m");

    // A device state QEMU refuses (cut short, but matching its manifest): a cold boot, saying why.
    const manifestFile = path.join(warmDir, "manifest.json");
    const deviceState = path.join(warmDir, "state.bin");
    fs.truncateSync(deviceState, Math.floor(fs.statSync(deviceState).size / 2));
    const cut = JSON.parse(fs.readFileSync(manifestFile, "utf8")) as {
      state: { sha256: string; size: number };
    };
    cut.state = {
      sha256: createHash("sha256").update(fs.readFileSync(deviceState)).digest("hex"),
      size: fs.statSync(deviceState).size,
    };
    fs.writeFileSync(manifestFile, JSON.stringify(cut));
    const refused = await create(env);
    expect(refused.state).toBe("started");
    expect(refused.boot_kind).toBe("cold");
    expect(refused.boot_note).toContain("could not be restored");
    expect(await exec(refused.id, "echo fine", env)).toBe("fine\n");
    expect((await runCliJson<PrepareResult>(["prepare", "--force"], env)).json.status).toBe(
      "prepared",
    );

    // Truncated memory file.
    const memory = path.join(warmDir, "memory.ram");
    fs.truncateSync(memory, Math.floor(fs.statSync(memory).size / 2));
    const doctor = await runCliJson<DoctorReport>(
      ["doctor", "--skip-boot", "--environment", "debian:12"],
      env,
    );
    expect(doctor.json.daily_loop).toMatchObject({
      readiness: "stale",
      fix: "run `pyro prepare debian:12`",
    });
    expect(doctor.json.daily_loop?.reason).toContain("memory snapshot is missing or damaged");
    const cold = await create(env);
    expect(cold.state).toBe("started");
    expect(cold.boot_kind).toBe("cold");
    expect(cold.boot_note).toContain("damaged");
    expect(await exec(cold.id, "echo works; hostname", env)).toBe(
      `works\n${cold.id.replace("_", "-")}\n`,
    );

    // A snapshot made by another QEMU version is not used.
    expect((await runCliJson<PrepareResult>(["prepare", "--force"], env)).json.status).toBe(
      "prepared",
    );
    // (A workspace restored from this snapshot must outlive it: see the end.)
    const survivor = await create(env);
    expect(survivor.boot_kind).toBe("warm");
    await exec(survivor.id, "echo kept > /tmp/kept", env);
    const manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8")) as {
      key: { qemu_version: string };
    };
    manifest.key.qemu_version = "6.0.0";
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    const stale = await runCliJson<DoctorReport>(
      ["doctor", "--skip-boot", "--environment", "debian:12"],
      env,
    );
    expect(stale.json.daily_loop).toMatchObject({ readiness: "stale", changed: ["qemu_version"] });
    expect(stale.json.daily_loop?.reason).toContain("QEMU version");
    const other = await create(env);
    expect(other.boot_kind).toBe("cold");

    // Prune reclaims the stale snapshot.
    const pruned = await runCliJson<{ freed_warm_bytes: number }>(["env", "prune"], env);
    expect(pruned.json.freed_warm_bytes).toBeGreaterThan(0);
    expect(fs.existsSync(warmDir)).toBe(false);
    // Its RAM file is gone from the cache, yet the workspace restored from it
    // still reads every page it had (the mapping keeps the file alive).
    expect(
      await exec(
        survivor.id,
        "cat /tmp/kept; cat /usr/bin/* /usr/lib/x86_64-linux-gnu/*.so* | wc -c >/dev/null && echo read",
        env,
      ),
    ).toBe("kept\nread\n");
    expect(home).toBeTruthy();
  });

  it("a prepare killed midway leaves no snapshot that looks valid", async () => {
    const { env } = homeWithEnvironment();
    const warmRoot = path.join(resolvePaths(env).cache, "warm");
    const child = spawnCli(["prepare"], env);
    await waitFor(
      () =>
        fs.existsSync(warmRoot) && fs.readdirSync(warmRoot).some((d) => d.startsWith(".staging")),
      120_000,
      "the save to start",
    );
    child.kill("SIGKILL");
    await new Promise((r) => child.on("close", r));
    const doctor = await runCliJson<DoctorReport>(
      ["doctor", "--skip-boot", "--environment", "debian:12"],
      env,
    );
    expect(doctor.json.daily_loop?.readiness).toBe("cold");
    const ws = await create(env);
    expect(ws.boot_kind).toBe("cold");
  });
});
