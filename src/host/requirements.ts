/**
 * What pyro needs from the host, and how to get it. `pyro setup` installs the
 * missing packages with apt-get (idempotent); everything else only checks.
 */
import fs from "node:fs";
import { ErrorCodes, PyroError } from "../errors.js";
import { findExecutable } from "../util/which.js";
import { runCommand } from "../util/process.js";
import type { ProgressFn } from "../util/progress.js";

export interface Requirement {
  /** What it is for, for people. */
  purpose: string;
  /** The executable that proves it is there. */
  binary: string;
  /** Debian package that provides it. */
  debianPackage: string;
  /** Optional extra check (e.g. busybox must be static). */
  verify?: (path: string) => boolean;
}

export const REQUIREMENTS: readonly Requirement[] = [
  { purpose: "runs the microVMs", binary: "qemu-system-x86_64", debianPackage: "qemu-system-x86" },
  { purpose: "creates disk overlays", binary: "qemu-img", debianPackage: "qemu-utils" },
  {
    purpose: "builds environments from Debian's archive",
    binary: "mmdebstrap",
    debianPackage: "mmdebstrap",
  },
  {
    purpose: "the guest's boot tools",
    binary: "busybox",
    debianPackage: "busybox-static",
    verify: (path) => isStaticElf(path),
  },
  { purpose: "builds filesystem images", binary: "mkfs.ext4", debianPackage: "e2fsprogs" },
  {
    purpose: "reads a stopped workspace's disk offline (disk tools)",
    binary: "debugfs",
    debianPackage: "e2fsprogs",
  },
  {
    purpose: "replays a stopped workspace's disk journal (disk tools)",
    binary: "e2fsck",
    debianPackage: "e2fsprogs",
  },
  { purpose: "packs the initramfs", binary: "cpio", debianPackage: "cpio" },
  { purpose: "ties a VM's life to its owner", binary: "setpriv", debianPackage: "util-linux" },
  {
    purpose: "carries a networked guest's connections to pyro's egress proxy",
    binary: "socat",
    debianPackage: "socat",
  },
];

export interface RequirementStatus {
  binary: string;
  debian_package: string;
  purpose: string;
  path: string | null;
  ok: boolean;
}

export function checkRequirements(): RequirementStatus[] {
  return REQUIREMENTS.map((req) => {
    const found = findExecutable(req.binary);
    const ok = found !== undefined && (req.verify ? req.verify(found) : true);
    return {
      binary: req.binary,
      debian_package: req.debianPackage,
      purpose: req.purpose,
      path: found ?? null,
      ok,
    };
  });
}

export function missingPackages(statuses = checkRequirements()): string[] {
  return [...new Set(statuses.filter((s) => !s.ok).map((s) => s.debian_package))];
}

export const SETUP_HINT = "run `pyro setup` (as root) to install the host packages pyro needs";

/** Throw a clear error if anything in `binaries` is missing. */
export function requireHostTools(binaries: string[]): void {
  const missing = checkRequirements().filter((s) => binaries.includes(s.binary) && !s.ok);
  if (missing.length > 0) {
    throw new PyroError(
      ErrorCodes.HostRequirementMissing,
      `missing host tools: ${missing.map((m) => `${m.binary} (Debian package ${m.debian_package})`).join(", ")}`,
      {
        fix: { kind: "run_setup", packages: missing.map((m) => m.debian_package) },
      },
    );
  }
}

export interface SetupResult {
  installed: string[];
  already_present: string[];
  requirements: RequirementStatus[];
}

/** Install whatever is missing with apt-get. Safe to run again: does nothing when all is there. */
export async function installRequirements(progress: ProgressFn): Promise<SetupResult> {
  const before = checkRequirements();
  const missing = missingPackages(before);
  const present = [...new Set(before.filter((s) => s.ok).map((s) => s.debian_package))];
  if (missing.length === 0)
    return { installed: [], already_present: present, requirements: before };
  if (process.getuid?.() !== 0) {
    throw new PyroError(
      ErrorCodes.HostRequirementMissing,
      `missing host packages: ${missing.join(", ")}`,
      {
        hint: `run as root: apt-get install -y ${missing.join(" ")}`,
      },
    );
  }
  if (!findExecutable("apt-get")) {
    throw new PyroError(
      ErrorCodes.HostRequirementMissing,
      "pyro setup needs apt-get (Debian or Ubuntu)",
      {
        hint: `install the equivalents of: ${missing.join(", ")}`,
      },
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  progress("apt-get update");
  await runCommand("apt-get", ["update", "-q"], { env, timeoutMs: 15 * 60_000 });
  progress(`apt-get install ${missing.join(" ")}`);
  await runCommand("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...missing], {
    env,
    timeoutMs: 30 * 60_000,
    onLine: (line) => progress(line),
  });
  const after = checkRequirements();
  const still = missingPackages(after);
  if (still.length > 0) {
    throw new PyroError(
      ErrorCodes.HostRequirementMissing,
      `still missing after install: ${still.join(", ")}`,
    );
  }
  return { installed: missing, already_present: present, requirements: after };
}

function isStaticElf(path: string): boolean {
  try {
    const fd = fs.openSync(path, "r");
    try {
      const header = Buffer.alloc(64);
      fs.readSync(fd, header, 0, 64, 0);
      if (header.readUInt32BE(0) !== 0x7f454c46) return false;
      // A dynamically linked ELF has a PT_INTERP program header.
      const phoff = Number(header.readBigUInt64LE(32));
      const phentsize = header.readUInt16LE(54);
      const phnum = header.readUInt16LE(56);
      const table = Buffer.alloc(phentsize * phnum);
      fs.readSync(fd, table, 0, table.length, phoff);
      for (let i = 0; i < phnum; i++) if (table.readUInt32LE(i * phentsize) === 3) return false;
      return true;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}
