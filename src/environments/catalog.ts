/**
 * The curated environment catalog (contract §2). Catalog version = package version.
 */
import { ErrorCodes, PyroError } from "../errors.js";
import { VERSION } from "../version.js";

export interface CatalogEntry {
  name: string;
  description: string;
  /** Packages on top of mmdebstrap's minbase variant. */
  packages: string[];
  /** Size of the root filesystem's block device; only used blocks take space. */
  diskMib: number;
}

const DEBIAN_12_TOOLS = [
  "git",
  "ca-certificates",
  "curl",
  "less",
  "procps",
  "findutils",
  "diffutils",
  "patch",
  "jq",
  "python3",
  "vim-tiny",
  "nano",
  "file",
  "openssh-client",
  "xz-utils",
  "unzip",
];

const BUILD_TOOLS = [
  "build-essential",
  "make",
  "pkg-config",
  "nodejs",
  "npm",
  "python3-venv",
  "python3-pip",
];

export const CATALOG: readonly CatalogEntry[] = [
  {
    name: "debian:12-base",
    description: "Minimal Debian 12 userland: shell and core Unix tools",
    packages: [],
    diskMib: 8192,
  },
  {
    name: "debian:12",
    description: "Debian 12 with git, curl, python3 and the common tools agents use",
    packages: DEBIAN_12_TOOLS,
    diskMib: 8192,
  },
  {
    name: "debian:12-build",
    description: "debian:12 plus build-essential, make, pkg-config, Node.js/npm and Python venv",
    packages: [...DEBIAN_12_TOOLS, ...BUILD_TOOLS],
    diskMib: 16384,
  },
];

export const DEFAULT_ENVIRONMENT = "debian:12";
export const CATALOG_VERSION = VERSION;
/**
 * Bumped whenever the way an image is built changes (packages, hooks,
 * tuning, init scripts) within one catalog version: an entry built from an
 * older recipe is stale and is rebuilt.
 * 2: login profiles without spawns (tuning.ts).
 */
export const RECIPE_REVISION = 2;
export const DEBIAN_SUITE = "bookworm";
export const DEBIAN_MIRROR = process.env.PYRO_DEBIAN_MIRROR ?? "http://deb.debian.org/debian";

export function findCatalogEntry(name: string): CatalogEntry {
  const entry = CATALOG.find((candidate) => candidate.name === name);
  if (!entry) {
    throw new PyroError(ErrorCodes.UnknownEnvironment, `unknown environment "${name}"`, {
      hint: `choose one of: ${CATALOG.map((e) => e.name).join(", ")}`,
      details: { catalog: CATALOG.map((e) => e.name) },
    });
  }
  return entry;
}

/** A filesystem-safe form of an environment name: debian:12-build → debian_12-build. */
export function environmentSlug(name: string): string {
  return name.replace(/[^a-zA-Z0-9.-]/g, "_");
}
