/**
 * Resolve which kernel modules the initramfs needs, in load order, by reading
 * each module's own `.modinfo` section (mmdebstrap's extract variant leaves no
 * modules.dep, and we do not want to depend on the host's depmod).
 */
import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, PyroError } from "../errors.js";

/** Modules a pyro guest loads at boot: disks, the agent port, entropy, network. */
export const BOOT_MODULES = [
  "virtio_mmio",
  "virtio_blk",
  "virtio_console",
  "virtio_rng",
  "virtio_net",
];

/** The `depends=` list of a module file, from its ELF .modinfo section. */
export function moduleDependencies(file: string): string[] {
  const elf = fs.readFileSync(file);
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2)
    throw new PyroError(ErrorCodes.EnvironmentBuildFailed, `${file} is not an ELF64 module`);
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  const section = (i: number) => {
    const base = shoff + i * shentsize;
    return {
      name: elf.readUInt32LE(base),
      offset: Number(elf.readBigUInt64LE(base + 0x18)),
      size: Number(elf.readBigUInt64LE(base + 0x20)),
    };
  };
  const names = section(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const nameEnd = elf.indexOf(0, names.offset + s.name);
    const name = elf.toString("latin1", names.offset + s.name, nameEnd);
    if (name !== ".modinfo") continue;
    const fields = elf.toString("latin1", s.offset, s.offset + s.size).split("\0");
    const depends = fields.find((f) => f.startsWith("depends="))?.slice("depends=".length) ?? "";
    return depends.split(",").filter(Boolean);
  }
  return [];
}

/** Index module name → file, treating `-` and `_` alike as the kernel does. */
export function indexModules(modulesDir: string): Map<string, string> {
  const index = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".ko"))
        index.set(entry.name.slice(0, -3).replace(/-/g, "_"), full);
    }
  };
  walk(modulesDir);
  return index;
}

/**
 * Files to insmod, dependencies first. Modules built into the kernel (listed
 * in modules.builtin) are skipped; a module that exists nowhere is an error.
 */
export function resolveModuleLoadOrder(modulesDir: string, wanted: string[]): string[] {
  const index = indexModules(modulesDir);
  const builtinFile = path.join(modulesDir, "modules.builtin");
  const builtin = new Set(
    fs.existsSync(builtinFile)
      ? fs
          .readFileSync(builtinFile, "utf8")
          .split("\n")
          .map((line) => path.basename(line, ".ko").replace(/-/g, "_"))
      : [],
  );
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    const key = name.replace(/-/g, "_");
    if (seen.has(key)) return;
    seen.add(key);
    const file = index.get(key);
    if (!file) {
      if (builtin.has(key)) return;
      throw new PyroError(
        ErrorCodes.EnvironmentBuildFailed,
        `kernel module ${name} not found under ${modulesDir}`,
      );
    }
    for (const dep of moduleDependencies(file)) visit(dep);
    order.push(file);
  };
  for (const name of wanted) visit(name);
  return order;
}
