import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  BOOT_MODULES,
  indexModules,
  moduleDependencies,
  resolveModuleLoadOrder,
} from "./kernel-modules.js";

/**
 * A minimal little-endian ELF64 file with a section string table and, unless
 * `modinfo` is undefined, a .modinfo section holding the given NUL-separated fields.
 */
function fakeModule(modinfo: string[] | undefined, extraSections: string[] = []): Buffer {
  const names = [".shstrtab", ...extraSections, ...(modinfo ? [".modinfo"] : [])];
  const shstrtab = Buffer.from(`\0${names.join("\0")}\0`, "latin1");
  const nameOffset = (name: string) => shstrtab.indexOf(`\0${name}\0`, 0, "latin1") + 1;
  const modinfoData = Buffer.from(modinfo ? `${modinfo.join("\0")}\0` : "", "latin1");
  const extraData = Buffer.from("junk\0junk\0", "latin1");

  const header = Buffer.alloc(64);
  const sections: Array<{ name: number; data: Buffer }> = [
    { name: 0, data: Buffer.alloc(0) }, // SHN_UNDEF
    { name: nameOffset(".shstrtab"), data: shstrtab },
    ...extraSections.map((s) => ({ name: nameOffset(s), data: extraData })),
    ...(modinfo ? [{ name: nameOffset(".modinfo"), data: modinfoData }] : []),
  ];
  let offset = header.length;
  const placed = sections.map((s) => {
    const at = offset;
    offset += s.data.length;
    return { ...s, at };
  });
  const shoff = offset;
  const table = Buffer.alloc(64 * sections.length);
  placed.forEach((s, i) => {
    table.writeUInt32LE(s.name, i * 64);
    table.writeBigUInt64LE(BigInt(s.at), i * 64 + 0x18);
    table.writeBigUInt64LE(BigInt(s.data.length), i * 64 + 0x20);
  });
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(header, 0);
  header.writeBigUInt64LE(BigInt(shoff), 0x28);
  header.writeUInt16LE(64, 0x3a);
  header.writeUInt16LE(sections.length, 0x3c);
  header.writeUInt16LE(1, 0x3e); // .shstrtab
  return Buffer.concat([header, ...placed.map((s) => s.data), table]);
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-kmod-test-"));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function writeModule(relative: string, depends: string | undefined): string {
  const file = path.join(dir, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fields = ["license=GPL", `name=${path.basename(relative, ".ko")}`];
  if (depends !== undefined) fields.splice(1, 0, `depends=${depends}`);
  fs.writeFileSync(file, fakeModule(fields, [".text", ".data"]));
  return file;
}

describe("moduleDependencies", () => {
  it("reads depends= from .modinfo", () => {
    const file = path.join(dir, "m.ko");
    fs.writeFileSync(
      file,
      fakeModule(["license=GPL", "depends=virtio,virtio_ring", "vermagic=6.1"], [".text"]),
    );
    expect(moduleDependencies(file)).toEqual(["virtio", "virtio_ring"]);
  });

  it("is empty for an empty depends=", () => {
    const file = path.join(dir, "m.ko");
    fs.writeFileSync(file, fakeModule(["license=GPL", "depends="]));
    expect(moduleDependencies(file)).toEqual([]);
  });

  it("is empty without a depends= field", () => {
    const file = path.join(dir, "m.ko");
    fs.writeFileSync(file, fakeModule(["license=GPL"]));
    expect(moduleDependencies(file)).toEqual([]);
  });

  it("is empty without a .modinfo section", () => {
    const file = path.join(dir, "m.ko");
    fs.writeFileSync(file, fakeModule(undefined, [".text"]));
    expect(moduleDependencies(file)).toEqual([]);
  });

  it("does not mistake a field that merely contains depends= for it", () => {
    const file = path.join(dir, "m.ko");
    fs.writeFileSync(file, fakeModule(["description=no depends=here", "depends=a"]));
    expect(moduleDependencies(file)).toEqual(["a"]);
  });

  it("refuses a file that is not ELF64", () => {
    const file = path.join(dir, "m.ko");
    fs.writeFileSync(file, Buffer.alloc(128));
    expect(() => moduleDependencies(file)).toThrow(/not an ELF64 module/);
    const elf32 = fakeModule(["depends="]);
    elf32[4] = 1;
    fs.writeFileSync(file, elf32);
    expect(() => moduleDependencies(file)).toThrow(/not an ELF64 module/);
  });
});

describe("indexModules", () => {
  it("finds .ko files in nested directories, with - and _ alike", () => {
    const a = writeModule("kernel/drivers/virtio/virtio_mmio.ko", "");
    const b = writeModule("kernel/drivers/block/virtio-blk.ko", "");
    fs.writeFileSync(path.join(dir, "modules.builtin"), "");
    fs.writeFileSync(path.join(dir, "kernel", "README.txt"), "");
    const index = indexModules(dir);
    expect(index).toEqual(
      new Map([
        ["virtio_mmio", a],
        ["virtio_blk", b],
      ]),
    );
  });
});

describe("resolveModuleLoadOrder", () => {
  it("puts dependencies first, each module once", () => {
    const virtio = writeModule("kernel/virtio/virtio.ko", "");
    const ring = writeModule("kernel/virtio/virtio_ring.ko", "virtio");
    const mmio = writeModule("kernel/virtio/virtio_mmio.ko", "virtio,virtio_ring");
    const blk = writeModule("kernel/block/virtio_blk.ko", "virtio,virtio-ring");
    const order = resolveModuleLoadOrder(dir, ["virtio_mmio", "virtio_blk"]);
    expect(order).toEqual([virtio, ring, mmio, blk]);
  });

  it("treats - and _ alike in wanted names", () => {
    const blk = writeModule("kernel/block/virtio_blk.ko", "");
    expect(resolveModuleLoadOrder(dir, ["virtio-blk"])).toEqual([blk]);
  });

  it("skips modules built into the kernel", () => {
    const blk = writeModule("kernel/block/virtio_blk.ko", "virtio,virtio_ring");
    fs.writeFileSync(
      path.join(dir, "modules.builtin"),
      "kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\n",
    );
    expect(resolveModuleLoadOrder(dir, ["virtio_blk"])).toEqual([blk]);
    expect(resolveModuleLoadOrder(dir, ["virtio"])).toEqual([]);
  });

  it("refuses a module that exists nowhere", () => {
    writeModule("kernel/block/virtio_blk.ko", "virtio");
    expect(() => resolveModuleLoadOrder(dir, ["virtio_blk"])).toThrow(
      /kernel module virtio not found/,
    );
  });

  it("terminates on a dependency cycle", () => {
    const a = writeModule("a.ko", "b");
    const b = writeModule("b.ko", "a");
    expect(resolveModuleLoadOrder(dir, ["a"])).toEqual([b, a]);
  });

  it("lists the boot modules pyro needs", () => {
    expect(BOOT_MODULES).toEqual(
      expect.arrayContaining(["virtio_mmio", "virtio_blk", "virtio_console", "virtio_rng"]),
    );
  });
});
