/**
 * Standby VMs (src/supervisor/standby-pool.ts) on real guests: a prepared
 * environment keeps one VM restored and waiting; create and reset take it
 * over with the workspace's own identity; it is refilled, idles out, and is
 * never taken over when it came from another snapshot. The other guest tests
 * run with PYRO_STANDBY=0 (vitest.config.ts); these turn it on.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { writeFileAtomic } from "../src/config/paths.js";
import {
  liveStandby,
  listStandbys,
  slotDir,
  standbyFiles,
  stopStandbys,
  type StandbyRecord,
} from "../src/supervisor/standby-pool.js";
import { listeners, pidAlive, runCli, runCliJson, sharedPaths, waitFor } from "./helpers.js";

const ON = { PYRO_STANDBY: "1" };
const SLOT = { environment: "debian:12", vcpus: 1, memMib: 1024, network: false };
const TOOK_OVER = "took over a standby VM";
const paths = sharedPaths();
const created: string[] = [];

afterEach(async () => {
  for (const id of created.splice(0)) await runCli(["workspace", "delete", id], ON);
});

afterAll(async () => {
  stopStandbys(paths);
  await waitFor(() => listStandbys(paths).length === 0, 30_000, "standbys to stop");
});

interface Ws {
  id: string;
  boot_kind: string | null;
  boot_note: string | null;
}

async function standbyReady(): Promise<StandbyRecord> {
  await waitFor(() => liveStandby(paths, SLOT)?.state === "ready", 120_000, "a ready standby");
  return liveStandby(paths, SLOT)!;
}

async function create(): Promise<Ws> {
  const { code, json, stderr } = await runCliJson<Ws>(["workspace", "create"], ON);
  expect(code, stderr).toBe(0);
  created.push(json.id);
  return json;
}

async function sh(id: string, command: string): Promise<string> {
  const { code, json, stderr } = await runCliJson<{ stdout: string; exit_code: number }>(
    ["workspace", "exec", id, "--", command],
    ON,
  );
  expect(code, stderr).toBe(0);
  return json.stdout;
}

function supervisorOf(id: string): number {
  const file = path.join(paths.data, "workspaces", id, "workspace.json");
  return (JSON.parse(fs.readFileSync(file, "utf8")) as { supervisor_pid: number }).supervisor_pid;
}

/** hostname, clock skew against the host (s), 16 random bytes, entries in /workspace. */
async function identity(id: string): Promise<[string, number, string, string]> {
  const out = await sh(id, "hostname; date +%s; od -An -tx1 -N16 /dev/urandom; ls -A /workspace");
  const [host = "", clock = "", random = "", ...files] = out.trim().split("\n");
  return [host, Math.abs(Number(clock) - Date.now() / 1000), random.trim(), files.join(" ")];
}

describe("standby VMs", () => {
  it("prepare leaves one waiting; creates take it over with their own identity; it is refilled", async () => {
    const prepared = await runCliJson(["prepare", "debian:12"], ON);
    expect(prepared.code, prepared.stderr).toBe(0);
    const first = await standbyReady();
    expect(first.key?.environment).toBe("debian:12");

    const a = await create();
    expect(a).toMatchObject({ boot_kind: "warm", boot_note: TOOK_OVER });
    // The standby that was taken over is now a's supervisor; a new one comes up for the next create.
    const second = await standbyReady();
    expect(second.supervisor_pid).not.toBe(first.supervisor_pid);
    const b = await create();
    expect(b.boot_note).toBe(TOOK_OVER);

    const [hostA, skewA, randomA, filesA] = await identity(a.id);
    const [hostB, skewB, randomB, filesB] = await identity(b.id);
    expect(hostA).toBe(a.id.replace(/_/g, "-"));
    expect(hostB).toBe(b.id.replace(/_/g, "-"));
    expect(skewA).toBeLessThan(60);
    expect(skewB).toBeLessThan(60);
    expect(randomA).not.toBe(randomB);
    expect(filesA).toBe("");
    expect(filesB).toBe("");

    // A standby counts against no limit: with room for exactly one more workspace, a create works.
    await standbyReady();
    const list = await runCliJson<{ workspaces: { state: string }[] }>(["workspace", "list"], ON);
    const running = list.json.workspaces.filter((w) => w.state === "started").length;
    const limited = await runCliJson<Ws>(["workspace", "create"], {
      ...ON,
      PYRO_MAX_RUNNING: String(running + 1),
    });
    expect(limited.code, limited.stderr).toBe(0);
    created.push(limited.json.id);
  });

  it("reset takes one over and keeps the identity; the disk it took survives stop, start and fork", async () => {
    await standbyReady();
    const ws = await create();
    expect(ws.boot_note).toBe(TOOK_OVER);
    await sh(ws.id, "echo kept > /workspace/kept.txt");
    const before = supervisorOf(ws.id);
    await standbyReady();
    const reset = await runCliJson<Ws>(["workspace", "reset", ws.id], ON);
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.json.boot_note).toBe(TOOK_OVER);
    // The VM it had (a standby taken over too) is gone, not left running beside the new one.
    await waitFor(() => !pidAlive(before), 10_000, "the old supervisor to go");
    expect(supervisorOf(ws.id)).not.toBe(before);
    const [host, skew, , files] = await identity(ws.id);
    expect(host).toBe(ws.id.replace(/_/g, "-"));
    expect(skew).toBeLessThan(60);
    expect(files).toBe(""); // back at the (empty) baseline

    await sh(ws.id, "echo on-disk > /workspace/disk.txt; sync");
    const forked = await runCliJson<Ws>(["workspace", "fork", ws.id], ON);
    expect(forked.code, forked.stderr).toBe(0);
    created.push(forked.json.id);
    expect(await sh(forked.json.id, "cat /workspace/disk.txt")).toBe("on-disk\n");

    expect((await runCli(["workspace", "stop", ws.id], ON)).code).toBe(0);
    expect((await runCli(["workspace", "start", ws.id], ON)).code).toBe(0);
    expect(await sh(ws.id, "cat /workspace/disk.txt")).toBe("on-disk\n");
  });

  it("is never taken over when it came from another snapshot, and idles out", async () => {
    const standby = await standbyReady();
    // As if pyro had been upgraded since the standby was restored.
    const file = standbyFiles(slotDir(paths, SLOT)).record;
    writeFileAtomic(
      file,
      JSON.stringify({ ...standby, key: { ...standby.key, pyro_version: "0.0.0-old" } }),
    );
    const ws = await create();
    expect(ws.boot_kind).toBe("warm");
    expect(ws.boot_note).toBeNull(); // restored its own VM
    await waitFor(
      () => !fs.existsSync(`/proc/${standby.supervisor_pid}`),
      30_000,
      "the stale standby to stop",
    );

    stopStandbys(paths);
    await waitFor(() => listStandbys(paths).length === 0, 30_000, "standbys to stop");
    const idle = await runCliJson(["prepare", "debian:12"], {
      ...ON,
      PYRO_STANDBY_IDLE_SECONDS: "2",
    });
    expect(idle.code).toBe(0);
    const short = await standbyReady();
    expect(short.idle_seconds).toBe(2);
    await waitFor(() => liveStandby(paths, SLOT) === undefined, 30_000, "the idle standby to go");
    // It retires its record first (no claim reaches a standby on its way out), then stops its VM
    // and removes its disk before it exits.
    await waitFor(() => !pidAlive(short.supervisor_pid), 30_000, "the idle standby to exit");
    const disks = standbyFiles(slotDir(paths, SLOT)).disks;
    expect(fs.readdirSync(disks)).not.toContain(`${short.supervisor_pid}.qcow2`);
  });

  it("keeps one per network variant: egress creates take the networked one, allowed host ports restore their own", async () => {
    const NET = { ...SLOT, network: true };
    const prepared = await runCliJson(["prepare", "debian:12", "--network"], ON);
    expect(prepared.code, prepared.stderr).toBe(0);
    await waitFor(() => liveStandby(paths, NET)?.state === "ready", 120_000, "a networked standby");
    const networked = await runCliJson<Ws>(
      ["workspace", "create", "--network-policy", "egress"],
      ON,
    );
    created.push(networked.json.id);
    expect(networked.json.boot_note).toBe(TOOK_OVER);
    expect(await sh(networked.json.id, "ls /sys/class/net | tr '\\n' ' '")).toBe("eth0 lo ");

    // A reset that takes a standby over has closed the old VM's published ports when it answers.
    await waitFor(() => liveStandby(paths, NET)?.state === "ready", 120_000, "the refill");
    const publishing = await runCliJson<Ws>(
      ["workspace", "create", "--network-policy", "egress+published-ports"],
      ON,
    );
    created.push(publishing.json.id);
    const service = await runCliJson<{ published_ports: { host_port: number }[] }>(
      [
        "workspace",
        "service",
        "start",
        publishing.json.id,
        "web",
        "--publish",
        "8000",
        "--",
        "sleep 600",
      ],
      ON,
    );
    const port = service.json.published_ports[0]!.host_port;
    expect(listeners(port)).toEqual(["0100007F"]);
    await waitFor(() => liveStandby(paths, NET)?.state === "ready", 120_000, "the refill");
    const reset = await runCliJson<Ws>(["workspace", "reset", publishing.json.id], ON);
    expect(reset.json.boot_note).toBe(TOOK_OVER);
    expect(listeners(port)).toEqual([]);

    await waitFor(() => liveStandby(paths, NET)?.state === "ready", 120_000, "the refill");
    const allowed = await runCliJson<Ws>(
      ["workspace", "create", "--network-policy", "egress", "--allow-host-port", "11434"],
      ON,
    );
    created.push(allowed.json.id);
    expect(allowed.json.boot_kind).toBe("warm");
    expect(allowed.json.boot_note).toBeNull(); // its forwards are fixed when QEMU starts
    expect(liveStandby(paths, NET)?.state).toBe("ready");
  });
});
