/**
 * Build an environment from Debian's archive on this machine:
 *   - Debian's cloud kernel, extracted with mmdebstrap's extract variant;
 *   - an initramfs pyro builds: busybox-static, the virtio modules, /init;
 *   - a root filesystem from mmdebstrap (minbase + the catalog's packages),
 *     as an ext4 image in a compact qcow2 file.
 * Everything happens inside `workDir`; the cache moves the results in place.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { pipeline } from "node:stream/promises";
import { ErrorCodes, PyroError, type Fix } from "../errors.js";
import { INITRAMFS_INIT, ROOT_LABEL } from "../vm/boot-scripts.js";
import { requireHostTools } from "../host/requirements.js";
import { buildExt4Image } from "../util/disk-images.js";
import { removeTree } from "../util/mounts.js";
import { runCommand } from "../util/process.js";
import type { ProgressFn } from "../util/progress.js";
import { findExecutable } from "../util/which.js";
import { DEBIAN_MIRROR, DEBIAN_SUITE, type CatalogEntry } from "./catalog.js";
import { BOOT_MODULES, resolveModuleLoadOrder } from "./kernel-modules.js";
import { tuneRootFilesystem } from "./tuning.js";

export interface PackageVersion {
  name: string;
  version: string;
}

export interface BuiltEnvironment {
  kernel: string;
  initramfs: string;
  rootfs: string;
  kernelRelease: string;
  kernelPackage: PackageVersion;
  packages: PackageVersion[];
}

const KERNEL_PACKAGE = "linux-image-cloud-amd64";

/** Leave documentation and translations out of the image: smaller, faster to build and boot. */
const DPKG_EXCLUDES = [
  "path-exclude=/usr/share/man/*",
  "path-exclude=/usr/share/doc/*",
  "path-include=/usr/share/doc/*/copyright",
  "path-exclude=/usr/share/info/*",
  "path-exclude=/usr/share/locale/*",
  "path-include=/usr/share/locale/locale.alias",
];

const BUILD_FIX: Fix = {
  kind: "pull_environment",
  note: "check that Debian's archive is reachable",
};

export async function buildEnvironment(
  entry: CatalogEntry,
  workDir: string,
  progress: ProgressFn,
): Promise<BuiltEnvironment> {
  requireHostTools(["mmdebstrap", "busybox", "mkfs.ext4", "cpio", "qemu-img"]);
  progress(`${entry.name}: fetching the kernel and the root filesystem from Debian`);
  const [kernel, rootfsDir] = await Promise.all([
    extractKernel(path.join(workDir, "kernel-tree"), progress),
    bootstrapRoot(entry, path.join(workDir, "rootfs-tree"), progress),
  ]);
  tuneRootFilesystem(rootfsDir);
  progress(`${entry.name}: building the initramfs`);
  const initramfs = path.join(workDir, "initramfs.img");
  await buildInitramfs(kernel.modulesDir, path.join(workDir, "initramfs-tree"), initramfs);
  const packages = await listPackages(rootfsDir);
  progress(`${entry.name}: building the root filesystem image`);
  const rootfs = path.join(workDir, "rootfs.qcow2");
  await buildExt4Image(
    rootfsDir,
    path.join(workDir, "rootfs.raw"),
    rootfs,
    ROOT_LABEL,
    entry.diskMib,
  );
  const vmlinuz = path.join(workDir, "vmlinuz");
  fs.copyFileSync(kernel.vmlinuz, vmlinuz);
  await removeTree(path.join(workDir, "kernel-tree"));
  await removeTree(rootfsDir);
  await removeTree(path.join(workDir, "initramfs-tree"));
  return {
    kernel: vmlinuz,
    initramfs,
    rootfs,
    kernelRelease: kernel.release,
    kernelPackage: kernel.package,
    packages,
  };
}

async function extractKernel(dir: string, progress: ProgressFn) {
  await runCommand(
    "mmdebstrap",
    ["--variant=extract", `--include=${KERNEL_PACKAGE}`, DEBIAN_SUITE, dir, DEBIAN_MIRROR],
    {
      errorCode: ErrorCodes.EnvironmentBuildFailed,
      fix: BUILD_FIX,
      onLine: (l) => progress(`kernel: ${l}`),
    },
  );
  const boot = path.join(dir, "boot");
  const image = fs.readdirSync(boot).find((f) => f.startsWith("vmlinuz-"));
  if (!image)
    throw new PyroError(ErrorCodes.EnvironmentBuildFailed, `no kernel image in ${KERNEL_PACKAGE}`);
  const release = image.slice("vmlinuz-".length);
  return {
    vmlinuz: path.join(boot, image),
    release,
    modulesDir: path.join(dir, "lib", "modules", release),
    package: { name: `linux-image-${release}`, version: kernelPackageVersion(dir, release) },
  };
}

/** The extract variant records no dpkg status; the package changelog names the version. */
function kernelPackageVersion(dir: string, release: string): string {
  const changelog = path.join(
    dir,
    "usr",
    "share",
    "doc",
    `linux-image-${release}`,
    "changelog.Debian.gz",
  );
  try {
    const first =
      zlib.gunzipSync(fs.readFileSync(changelog)).toString("utf8").split("\n", 1)[0] ?? "";
    return /\(([^)]+)\)/.exec(first)?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
}

async function bootstrapRoot(
  entry: CatalogEntry,
  dir: string,
  progress: ProgressFn,
): Promise<string> {
  const args = ["--variant=minbase", ...DPKG_EXCLUDES.map((rule) => `--dpkgopt=${rule}`)];
  if (entry.packages.length > 0) args.push(`--include=${entry.packages.join(",")}`);
  // Identity files the guest needs; the hostname is set again at every boot.
  args.push(
    '--customize-hook=echo pyro > "$1/etc/hostname"',
    "--customize-hook=printf '127.0.0.1 localhost\\n127.0.1.1 pyro\\n::1 localhost\\n' > \"$1/etc/hosts\"",
    '--customize-hook=mkdir -p "$1/opt/pyro" "$1/workspace"',
    '--customize-hook=rm -f "$1/etc/machine-id"; : > "$1/etc/machine-id"',
  );
  await runCommand("mmdebstrap", [...args, DEBIAN_SUITE, dir, DEBIAN_MIRROR], {
    errorCode: ErrorCodes.EnvironmentBuildFailed,
    fix: BUILD_FIX,
    timeoutMs: 60 * 60_000,
    parentDeathSignal: "TERM",
    onLine: (l) => progress(`rootfs: ${l}`),
  });
  return dir;
}

async function listPackages(rootDir: string): Promise<PackageVersion[]> {
  const { stdout } = await runCommand("dpkg-query", [
    `--admindir=${path.join(rootDir, "var", "lib", "dpkg")}`,
    "-W",
    "-f",
    "${Package}\\t${Version}\\n",
  ]);
  return stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [name = "", version = ""] = line.split("\t");
      return { name, version };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

async function buildInitramfs(modulesDir: string, treeDir: string, output: string): Promise<void> {
  const busybox = findExecutable("busybox")!;
  fs.mkdirSync(path.join(treeDir, "bin"), { recursive: true });
  fs.mkdirSync(path.join(treeDir, "modules"), { recursive: true });
  fs.copyFileSync(busybox, path.join(treeDir, "bin", "busybox"));
  fs.chmodSync(path.join(treeDir, "bin", "busybox"), 0o755);
  fs.writeFileSync(path.join(treeDir, "init"), INITRAMFS_INIT, { mode: 0o755 });
  const order = resolveModuleLoadOrder(modulesDir, BOOT_MODULES);
  const names: string[] = [];
  for (const file of order) {
    const name = path.basename(file);
    fs.copyFileSync(file, path.join(treeDir, "modules", name));
    names.push(name);
  }
  fs.writeFileSync(path.join(treeDir, "modules", "order"), `${names.join("\n")}\n`);
  const files = [
    "init",
    "bin",
    "bin/busybox",
    "modules",
    "modules/order",
    ...names.map((n) => `modules/${n}`),
  ];
  // cpio reads the file list on stdin and writes the archive, gzipped on its way to disk.
  const cpio = spawn("cpio", ["--quiet", "-o", "-H", "newc", "-R", "0:0"], {
    cwd: treeDir,
    stdio: ["pipe", "pipe", "ignore"],
  });
  cpio.stdin.end(`${files.join("\n")}\n`);
  const exited = new Promise<number | null>((resolve, reject) => {
    cpio.on("error", reject);
    cpio.on("close", resolve);
  });
  await pipeline(cpio.stdout, zlib.createGzip({ level: 6 }), fs.createWriteStream(output));
  const code = await exited;
  if (code !== 0)
    throw new PyroError(ErrorCodes.EnvironmentBuildFailed, `cpio exited with ${code}`);
}
