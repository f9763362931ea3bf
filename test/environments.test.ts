/**
 * The environment cache with real builds from Debian's archive: manifests
 * that match their artifacts, all three catalog entries booting, corrupt and
 * missing artifacts rebuilt, interrupted and concurrent pulls, prune.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { resolvePaths } from "../src/config/paths.js";
import { mountsUnder } from "../src/util/mounts.js";
import { processesMentioning } from "../src/util/procs.js";
import {
  copyEnvironmentInto,
  runCli,
  runCliJson,
  sharedPaths,
  spawnCli,
  tempHome,
  waitFor,
} from "./helpers.js";

interface Manifest {
  name: string;
  version: string;
  kernel_release: string;
  packages: { name: string; version: string }[];
  artifacts: Record<string, { sha256: string; size: number }>;
}

function sha256(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

describe("environments", () => {
  it("lists the catalog with install state", async () => {
    const { code, json } = await runCliJson<{
      environments: { name: string; state: string; default: boolean }[];
    }>(["env", "list"]);
    expect(code).toBe(0);
    expect(json.environments.map((e) => e.name)).toEqual([
      "debian:12-base",
      "debian:12",
      "debian:12-build",
    ]);
    expect(json.environments.find((e) => e.name === "debian:12")).toMatchObject({
      state: "installed",
      default: true,
    });
  });

  it("inspect shows a manifest whose sha256 values match the cached artifacts", async () => {
    const { json } = await runCliJson<{ manifest: Manifest }>(["env", "inspect", "debian:12"]);
    const manifest = json.manifest;
    expect(manifest.name).toBe("debian:12");
    expect(manifest.kernel_release).toMatch(/cloud-amd64$/);
    const git = manifest.packages.find((p) => p.name === "git");
    expect(git?.version).toMatch(/^1:2\./);
    for (const artifact of Object.values(manifest.artifacts)) {
      const file = path.join(sharedPaths().blobs, artifact.sha256);
      expect(fs.statSync(file).size).toBe(artifact.size);
      expect(sha256(file)).toBe(artifact.sha256);
    }
  });

  it("builds and boots debian:12-base and debian:12-build with the contents the contract names", async () => {
    const base = await runCli([
      "run",
      "debian:12-base",
      "--",
      "command -v git || echo no-git; cat /etc/debian_version",
    ]);
    expect(base.code).toBe(0);
    expect(base.stdout.toString()).toMatch(/^no-git\n12\.\d+\n$/);
    const build = await runCli([
      "run",
      "debian:12-build",
      "--timeout-seconds",
      "120",
      "--",
      "node --version && npm --version >/dev/null && make --version | head -1 && pkg-config --version >/dev/null && echo 'int main(){return 0;}' > /tmp/t.c && cc /tmp/t.c -o /tmp/t && /tmp/t && python3 -m venv /tmp/venv && echo all-good",
    ]);
    expect(build.stderr).toBe("");
    expect(build.stdout.toString()).toMatch(/^v18\.\d+\.\d+\nGNU Make 4\.3\nall-good\n$/);
    expect(build.code).toBe(0);
  });

  it("never boots a corrupt or incomplete entry: it is rebuilt", async () => {
    const home = tempHome();
    const env = { PYRO_HOME: home };
    copyEnvironmentInto(home, "debian:12-base");
    const paths = resolvePaths(env);
    const manifest = JSON.parse(
      fs.readFileSync(path.join(paths.environments, "debian_12-base", "manifest.json"), "utf8"),
    ) as Manifest;
    const rootfs = path.join(paths.blobs, manifest.artifacts.rootfs!.sha256);
    // Flip bytes in the middle of the root filesystem, keeping its size.
    fs.chmodSync(rootfs, 0o644);
    const fd = fs.openSync(rootfs, "r+");
    fs.writeSync(
      fd,
      Buffer.from("corrupted!"),
      0,
      10,
      Math.floor(manifest.artifacts.rootfs!.size / 2),
    );
    fs.closeSync(fd);
    const listed = await runCliJson<{ environments: { name: string; state: string }[] }>(
      ["env", "list"],
      env,
    );
    expect(listed.json.environments.find((e) => e.name === "debian:12-base")?.state).toBe(
      "corrupt",
    );

    const run = await runCli(["run", "debian:12-base", "--", "echo rebuilt-and-booted"], env);
    expect(run.code).toBe(0);
    expect(run.stdout.toString()).toBe("rebuilt-and-booted\n");
    const after = await runCliJson<{ environments: { name: string; state: string }[] }>(
      ["env", "list"],
      env,
    );
    expect(after.json.environments.find((e) => e.name === "debian:12-base")?.state).toBe(
      "installed",
    );

    // A missing artifact is caught the same way.
    const rebuilt = JSON.parse(
      fs.readFileSync(path.join(paths.environments, "debian_12-base", "manifest.json"), "utf8"),
    ) as Manifest;
    fs.rmSync(path.join(paths.blobs, rebuilt.artifacts.kernel!.sha256));
    const missing = await runCliJson<{ state: string }>(["env", "inspect", "debian:12-base"], env);
    expect(missing.json.state).toBe("corrupt");
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("an interrupted pull leaves no entry, and the next pull recovers", async () => {
    const home = tempHome();
    const env = { PYRO_HOME: home };
    const paths = resolvePaths(env);
    const child = spawnCli(["env", "pull", "debian:12-base"], env);
    await waitFor(
      () => fs.existsSync(paths.tmp) && fs.readdirSync(paths.tmp).length > 0,
      120_000,
      "the build to start",
    );
    await new Promise((r) => setTimeout(r, 3000));
    child.kill("SIGKILL");
    await new Promise((r) => child.on("close", r));
    const state = await runCliJson<{ state: string; manifest: unknown }>(
      ["env", "inspect", "debian:12-base"],
      env,
    );
    expect(state.json.state).toBe("not_installed");
    expect(state.json.manifest).toBeNull();
    // Pull again at once, while the killed build's tools may still be winding down.
    const pull = await runCliJson<{ cached: boolean }>(["env", "pull", "debian:12-base"], env);
    expect(pull.code).toBe(0);
    expect(pull.json.cached).toBe(false);
    const again = await runCliJson<{ state: string }>(["env", "inspect", "debian:12-base"], env);
    expect(again.json.state).toBe("installed");
    // Once nothing works in the abandoned tree any more, prune leaves no trace of it (no mounts either).
    await waitFor(
      () => processesMentioning(paths.tmp).length === 0,
      120_000,
      "the killed build's tools to exit",
    );
    expect((await runCli(["env", "prune"], env)).code).toBe(0);
    expect(fs.readdirSync(paths.tmp)).toEqual([]);
    expect(mountsUnder(home)).toEqual([]);
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("two pulls of the same environment at once both succeed with one build", async () => {
    const home = tempHome();
    const env = { PYRO_HOME: home };
    const [a, b] = await Promise.all([
      runCliJson<{ cached: boolean }>(["env", "pull", "debian:12-base"], env),
      runCliJson<{ cached: boolean }>(["env", "pull", "debian:12-base"], env),
    ]);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    const paths = resolvePaths(env);
    const manifest = JSON.parse(
      fs.readFileSync(path.join(paths.environments, "debian_12-base", "manifest.json"), "utf8"),
    ) as Manifest;
    const expected = new Set(Object.values(manifest.artifacts).map((a) => a.sha256));
    // Environment blobs plus the runtime disk, and nothing half-built.
    const blobs = fs.readdirSync(paths.blobs).filter((hex) => !expected.has(hex));
    expect(blobs.length).toBe(1);
    for (const hex of expected) expect(sha256(path.join(paths.blobs, hex))).toBe(hex);
    const run = await runCli(["run", "debian:12-base", "--", "true"], env);
    expect(run.code).toBe(0);
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("prune removes stale entries and orphan blobs and keeps what is current", async () => {
    const home = tempHome();
    const env = { PYRO_HOME: home };
    copyEnvironmentInto(home, "debian:12");
    const paths = resolvePaths(env);
    fs.writeFileSync(path.join(paths.blobs, "0".repeat(64)), "orphan");
    const staleDir = path.join(paths.environments, "debian_12-base");
    fs.mkdirSync(staleDir, { recursive: true });
    fs.writeFileSync(
      path.join(staleDir, "manifest.json"),
      JSON.stringify({ name: "debian:12-base", version: "0.0.1", artifacts: {} }),
    );
    const { code, json } = await runCliJson<{
      removed_environments: string[];
      removed_blobs: number;
    }>(["env", "prune"], env);
    expect(code).toBe(0);
    expect(json.removed_environments).toEqual(["debian:12-base"]);
    expect(json.removed_blobs).toBe(1);
    const list = await runCliJson<{ environments: { name: string; state: string }[] }>(
      ["env", "list"],
      env,
    );
    expect(list.json.environments.map((e) => e.state)).toEqual([
      "not_installed",
      "installed",
      "not_installed",
    ]);
    const all = await runCliJson<{ removed_environments: string[] }>(
      ["env", "prune", "--all"],
      env,
    );
    expect(all.json.removed_environments).toEqual(["debian:12"]);
    expect(fs.readdirSync(paths.blobs)).toEqual([]);
    fs.rmSync(home, { recursive: true, force: true });
  });
});
