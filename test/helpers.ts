/**
 * Helpers for guest-backed tests: they drive the built CLI (dist/cli.js) as a
 * user would, or the layers below the SDK, against real microVMs.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { resolvePaths, type PyroPaths } from "../src/config/paths.js";
import { EnvironmentCache } from "../src/environments/cache.js";
import type { LaunchContext } from "../src/boot/launch.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const CLI = path.join(ROOT, "dist", "cli.js");

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 600_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

export async function runCliJson<T = Record<string, unknown>>(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; json: T; stderr: string }> {
  // --json goes before `--`: everything after it is the guest command.
  const split = args.indexOf("--");
  const withJson =
    split === -1 ? [...args, "--json"] : [...args.slice(0, split), "--json", ...args.slice(split)];
  const result = await runCli(withJson, env);
  let json: T;
  try {
    json = JSON.parse(result.stdout.toString("utf8")) as T;
  } catch {
    throw new Error(
      `not JSON (exit ${result.code}): ${result.stdout.toString().slice(0, 500)}\nstderr: ${result.stderr.slice(-2000)}`,
    );
  }
  return { code: result.code, json, stderr: result.stderr };
}

/** The state directory the tests share with `make test` (so the environment cache is reused). */
export function sharedPaths(): PyroPaths {
  return resolvePaths();
}

export function launchContext(paths: PyroPaths = sharedPaths()): LaunchContext {
  return { paths, cache: new EnvironmentCache(paths), progress: () => {}, maxRunning: 100 };
}

/** A fresh, empty PYRO_HOME for tests that need their own cache or state. */
export function tempHome(prefix = "pyro-test-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Write files into a directory and commit them all (a repository is made on first use); returns the commit. */
export function commitFiles(dir: string, files: Record<string, string>, message = "init"): string {
  for (const [name, body] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), body);
  const git = (...args: string[]) =>
    execFileSync(
      "git",
      ["-C", dir, "-c", "user.email=t@example.com", "-c", "user.name=t", ...args],
      {
        encoding: "utf8",
      },
    ).trim();
  if (!fs.existsSync(path.join(dir, ".git"))) git("init", "-q");
  git("add", ".");
  git("commit", "-qm", message);
  return git("rev-parse", "HEAD");
}

/** Copy an installed environment's cache entry from the shared cache into another PYRO_HOME. */
export function copyEnvironmentInto(home: string, name: string): void {
  const from = sharedPaths();
  const to = resolvePaths({ PYRO_HOME: home });
  const slug = name.replace(/[^a-zA-Z0-9.-]/g, "_");
  const manifest = JSON.parse(
    fs.readFileSync(path.join(from.environments, slug, "manifest.json"), "utf8"),
  ) as {
    artifacts: Record<string, { sha256: string }>;
  };
  fs.mkdirSync(to.blobs, { recursive: true });
  fs.mkdirSync(path.join(to.environments, slug), { recursive: true });
  for (const artifact of Object.values(manifest.artifacts)) {
    fs.copyFileSync(path.join(from.blobs, artifact.sha256), path.join(to.blobs, artifact.sha256));
  }
  fs.copyFileSync(
    path.join(from.environments, slug, "manifest.json"),
    path.join(to.environments, slug, "manifest.json"),
  );
}

export async function waitFor(
  predicate: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The addresses (hex, as /proc/net/tcp has them) listening on host TCP port `port`. */
export function listeners(port: number): string[] {
  const found: string[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of fs.readFileSync(file, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [address, hexPort] = (fields[1] ?? "").split(":");
      if (fields[3] === "0A" && hexPort && parseInt(hexPort, 16) === port) found.push(address!);
    }
  }
  return found;
}
