import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  AGENT_PORT_NAME,
  buildQemuArgs,
  findQemu,
  hostTscKhz,
  kernelCommandLine,
  type MachineConfig,
} from "./qemu.js";

const CPUINFO = [
  "processor\t: 0",
  "vendor_id\t: GenuineIntel",
  "model name\t: Some CPU @ 2.40GHz",
  "cpu MHz\t\t: 2399.998",
  "cache size\t: 36608 KB",
  "",
  "processor\t: 1",
  "cpu MHz\t\t: 1200.000",
  "",
].join("\n");

/** Serve `cpuinfo` for /proc/cpuinfo and defer to the real fs for anything else. */
function fakeCpuinfo(cpuinfo: string | Error): void {
  const real = fs.readFileSync;
  vi.spyOn(fs, "readFileSync").mockImplementation(((file: fs.PathOrFileDescriptor, ...rest) => {
    if (file === "/proc/cpuinfo") {
      if (cpuinfo instanceof Error) throw cpuinfo;
      return cpuinfo;
    }
    return (real as (...args: unknown[]) => unknown)(file, ...rest);
  }) as typeof fs.readFileSync);
}

afterEach(() => {
  vi.restoreAllMocks();
});

function config(overrides: Partial<MachineConfig> = {}): MachineConfig {
  return {
    accel: "kvm",
    vcpus: 2,
    memMib: 1024,
    kernel: "/cache/env/vmlinuz",
    initrd: "/cache/env/initrd.img",
    kernelArgs: ["root=/dev/vda", "init=/opt/pyro/init"],
    disks: [
      { path: "/cache/env/rootfs.qcow2", format: "qcow2", readonly: true },
      { path: "/data/vms/abc/overlay.qcow2", format: "qcow2", readonly: false },
    ],
    agentSocket: "/data/vms/abc/agent.sock",
    qmpSocket: "/data/vms/abc/qmp.sock",
    console: "/data/vms/abc/console.log",
    ...overrides,
  };
}

/** The value following each occurrence of `flag`. */
function values(args: string[], flag: string): string[] {
  const out: string[] = [];
  args.forEach((arg, i) => {
    if (arg === flag) out.push(args[i + 1]!);
  });
  return out;
}

function single(args: string[], flag: string): string {
  const found = values(args, flag);
  expect(found, `exactly one ${flag}`).toHaveLength(1);
  return found[0]!;
}

describe("buildQemuArgs", () => {
  it("builds a microvm with no defaults, no reboot and no display", () => {
    const args = buildQemuArgs(config());
    expect(args).toContain("-nodefaults");
    expect(args).toContain("-no-user-config");
    expect(args).toContain("-no-reboot");
    expect(single(args, "-display")).toBe("none");
    expect(single(args, "-M").split(",")[0]).toBe("microvm");
    expect(single(args, "-smp")).toBe("2");
    expect(single(args, "-m")).toBe("1024M");
    expect(single(args, "-kernel")).toBe("/cache/env/vmlinuz");
    expect(single(args, "-initrd")).toBe("/cache/env/initrd.img");
  });

  it("every flag that takes a value gets one", () => {
    const args = buildQemuArgs(config());
    for (const flag of ["-M", "-accel", "-cpu", "-drive", "-device", "-chardev", "-qmp"]) {
      for (const value of values(args, flag)) {
        expect(value, `value of ${flag}`).toBeDefined();
        expect(value.startsWith("-"), `value of ${flag}: ${value}`).toBe(false);
      }
    }
  });

  it("backs guest RAM with a named backend", () => {
    const args = buildQemuArgs(config());
    expect(single(args, "-M").split(",")).toContain("memory-backend=mem");
    expect(values(args, "-object")).toEqual(["memory-backend-ram,id=mem,size=1024M"]);
  });

  it("maps a RAM file shared (to make a snapshot) or private (to restore one)", () => {
    const shared = buildQemuArgs(
      config({ memory: { kind: "file", path: "/cache/warm/memory.ram", shared: true } }),
    );
    expect(values(shared, "-object")).toEqual([
      "memory-backend-file,id=mem,size=1024M,mem-path=/cache/warm/memory.ram,share=on",
    ]);
    const cow = buildQemuArgs(
      config({ memory: { kind: "file", path: "/a,b/ram", shared: false } }),
    );
    expect(values(cow, "-object")).toEqual([
      "memory-backend-file,id=mem,size=1024M,mem-path=/a,,b/ram,share=off",
    ]);
  });

  it("doubles commas in paths inside option lists", () => {
    const args = buildQemuArgs(
      config({ disks: [{ path: "/x,y/disk.qcow2", format: "qcow2", readonly: false }] }),
    );
    expect(values(args, "-drive")[0]).toContain("file=/x,,y/disk.qcow2,");
  });

  it("uses -cpu host under kvm", () => {
    const args = buildQemuArgs(config({ accel: "kvm" }));
    expect(single(args, "-accel")).toBe("kvm");
    expect(single(args, "-cpu")).toBe("host");
  });

  it("uses -cpu max under tcg", () => {
    const args = buildQemuArgs(config({ accel: "tcg" }));
    expect(single(args, "-accel")).toBe("tcg");
    expect(single(args, "-cpu")).toBe("max");
  });

  it("turns disks into virtio-blk-device drives, read-only ones with readonly=on", () => {
    const args = buildQemuArgs(config());
    const drives = values(args, "-drive");
    expect(drives).toHaveLength(2);
    const [base, overlay] = drives.map((d) => d.split(","));
    expect(base).toEqual(
      expect.arrayContaining([
        "id=disk0",
        "file=/cache/env/rootfs.qcow2",
        "format=qcow2",
        "if=none",
        "readonly=on",
      ]),
    );
    expect(overlay).toEqual(
      expect.arrayContaining([
        "id=disk1",
        "file=/data/vms/abc/overlay.qcow2",
        "format=qcow2",
        "if=none",
      ]),
    );
    expect(overlay!.some((o) => o.startsWith("readonly"))).toBe(false);
    const devices = values(args, "-device");
    expect(devices).toContain("virtio-blk-device,drive=disk0");
    expect(devices).toContain("virtio-blk-device,drive=disk1");
    // Disk order is device order: vda is disk0.
    expect(devices.indexOf("virtio-blk-device,drive=disk0")).toBeLessThan(
      devices.indexOf("virtio-blk-device,drive=disk1"),
    );
  });

  it("passes raw disks as raw", () => {
    const args = buildQemuArgs(
      config({ disks: [{ path: "/x/disk.img", format: "raw", readonly: false }] }),
    );
    expect(single(args, "-drive").split(",")).toContain("format=raw");
  });

  it("builds a VM with no disks", () => {
    const args = buildQemuArgs(config({ disks: [] }));
    expect(values(args, "-drive")).toEqual([]);
    expect(values(args, "-device").some((d) => d.startsWith("virtio-blk-device"))).toBe(false);
  });

  it("serves the agent on a virtio-serial port named org.pyro.agent", () => {
    expect(AGENT_PORT_NAME).toBe("org.pyro.agent");
    const args = buildQemuArgs(config());
    const devices = values(args, "-device");
    expect(devices).toContain("virtio-serial-device");
    const chardevs = values(args, "-chardev");
    const agent = chardevs.find((c) => c.startsWith("socket,"));
    expect(agent).toBeDefined();
    const fields = agent!.split(",");
    expect(fields).toContain("id=agent");
    expect(fields).toContain("path=/data/vms/abc/agent.sock");
    expect(fields).toContain("server=on");
    expect(fields).toContain("wait=off");
    expect(devices).toContain("virtserialport,chardev=agent,name=org.pyro.agent");
  });

  it("leaves the agent port out without an agent socket", () => {
    const args = buildQemuArgs(config({ agentSocket: undefined }));
    const devices = values(args, "-device");
    expect(devices).not.toContain("virtio-serial-device");
    expect(devices.some((d) => d.startsWith("virtserialport"))).toBe(false);
    expect(values(args, "-chardev").some((c) => c.includes("id=agent"))).toBe(false);
  });

  it("serves QMP on a unix socket", () => {
    const args = buildQemuArgs(config());
    expect(single(args, "-qmp")).toBe("unix:/data/vms/abc/qmp.sock,server=on,wait=off");
  });

  it("leaves QMP out without a qmp socket", () => {
    expect(buildQemuArgs(config({ qmpSocket: undefined }))).not.toContain("-qmp");
  });

  it("sends the serial console to a file", () => {
    const args = buildQemuArgs(config());
    expect(values(args, "-chardev")).toContain("file,id=console,path=/data/vms/abc/console.log");
    expect(single(args, "-serial")).toBe("chardev:console");
  });

  it("can send the serial console to stdio", () => {
    const args = buildQemuArgs(config({ console: "stdio" }));
    expect(single(args, "-serial")).toBe("stdio");
    expect(values(args, "-chardev").some((c) => c.includes("id=console"))).toBe(false);
  });

  it("has no network device unless asked", () => {
    const args = buildQemuArgs(config());
    expect(values(args, "-netdev")).toEqual([]);
    expect(values(args, "-device").some((d) => d.startsWith("virtio-net"))).toBe(false);
  });

  it("gives a networked VM restricted user-mode networking with one forward per reachable address", () => {
    const args = buildQemuArgs(
      config({
        network: {
          subnet: "10.0.2.0/24",
          gatewayAddress: "10.0.2.2",
          forwards: [
            {
              address: "10.0.2.100",
              port: 3128,
              command: ["/usr/bin/socat", "STDIO", "UNIX-CONNECT:/d/e.sock"],
            },
            {
              address: "10.0.2.254",
              port: 11434,
              command: ["/usr/bin/socat", "STDIO", "TCP:127.0.0.1:11434"],
            },
          ],
        },
      }),
    );
    const netdev = single(args, "-netdev").split(",");
    expect(netdev.slice(0, 2)).toEqual(["user", "id=net0"]);
    expect(netdev).toContain("restrict=on");
    expect(netdev).toContain("ipv6=off");
    expect(netdev).toContain(
      "guestfwd=tcp:10.0.2.100:3128-cmd:/usr/bin/socat STDIO UNIX-CONNECT:/d/e.sock",
    );
    expect(netdev).toContain(
      "guestfwd=tcp:10.0.2.254:11434-cmd:/usr/bin/socat STDIO TCP:127.0.0.1:11434",
    );
    expect(values(args, "-device")).toContain(
      "virtio-net-device,netdev=net0,mac=52:54:00:12:34:56",
    );
  });

  it("refuses a forward command that QEMU would split wrongly", () => {
    const network = {
      subnet: "10.0.2.0/24",
      gatewayAddress: "10.0.2.2",
      forwards: [{ address: "10.0.2.100", port: 3128, command: ["socat", "UNIX-CONNECT:/a b"] }],
    };
    expect(() => buildQemuArgs(config({ network }))).toThrow(/spaces or quotes/);
  });

  it("adds an entropy device", () => {
    expect(values(buildQemuArgs(config()), "-device")).toContain("virtio-rng-device");
  });

  it("appends the kernel command line with the extra arguments", () => {
    const append = single(buildQemuArgs(config()), "-append");
    const words = append.split(" ");
    expect(words).toContain("console=ttyS0");
    expect(words).toContain("panic=-1");
    expect(words.slice(-2)).toEqual(["root=/dev/vda", "init=/opt/pyro/init"]);
  });

  it("passes tsc_early_khz on the command line under tcg only", () => {
    fakeCpuinfo(CPUINFO);
    expect(single(buildQemuArgs(config({ accel: "tcg" })), "-append")).toContain(
      "tsc_early_khz=2399998",
    );
    expect(single(buildQemuArgs(config({ accel: "kvm" })), "-append")).not.toContain(
      "tsc_early_khz",
    );
  });
});

describe("kernelCommandLine", () => {
  it("never passes tsc_early_khz under kvm", () => {
    fakeCpuinfo(CPUINFO);
    expect(kernelCommandLine("kvm", [])).not.toContain("tsc_early_khz");
  });

  it("passes the first CPU's MHz as kHz under tcg", () => {
    fakeCpuinfo(CPUINFO);
    const words = kernelCommandLine("tcg", ["x=1"]).split(" ");
    expect(words.filter((w) => w.startsWith("tsc_early_khz="))).toEqual(["tsc_early_khz=2399998"]);
    // The extra arguments come last, so they can override the defaults.
    expect(words.at(-1)).toBe("x=1");
  });

  it("leaves tsc_early_khz out when /proc/cpuinfo has no cpu MHz", () => {
    fakeCpuinfo("processor\t: 0\nmodel name\t: ARM thing\n");
    expect(kernelCommandLine("tcg", [])).not.toContain("tsc_early_khz");
  });

  it("leaves tsc_early_khz out when /proc/cpuinfo cannot be read", () => {
    fakeCpuinfo(new Error("EACCES"));
    expect(kernelCommandLine("tcg", [])).not.toContain("tsc_early_khz");
  });

  it("matches the real host", () => {
    const khz = hostTscKhz();
    const line = kernelCommandLine("tcg", []);
    if (khz === undefined) expect(line).not.toContain("tsc_early_khz");
    else expect(line).toContain(`tsc_early_khz=${khz}`);
  });

  it("keeps the default arguments", () => {
    expect(kernelCommandLine("kvm", []).split(" ")).toEqual([
      "console=ttyS0",
      "quiet",
      "loglevel=3",
      "panic=-1",
      "reboot=t",
      "rw",
    ]);
  });
});

describe("hostTscKhz", () => {
  it("rounds MHz to whole kHz", () => {
    fakeCpuinfo("cpu MHz\t\t: 2899.9996\n");
    expect(hostTscKhz()).toBe(2900000);
  });

  it("is undefined without a cpu MHz line", () => {
    fakeCpuinfo("");
    expect(hostTscKhz()).toBeUndefined();
  });

  it("is a positive integer on this host if defined", () => {
    const khz = hostTscKhz();
    if (khz !== undefined) {
      expect(Number.isInteger(khz)).toBe(true);
      expect(khz).toBeGreaterThan(0);
    }
  });
});

describe("findQemu", () => {
  it("asks QEMU its version once per binary, remembered in the cache directory", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-find-qemu-"));
    const calls = path.join(dir, "calls");
    const fake = path.join(dir, "qemu-system-x86_64");
    fs.writeFileSync(
      fake,
      `#!/bin/sh\necho x >> '${calls}'\necho 'QEMU emulator version 9.9.1 (fake)'\n`,
      { mode: 0o755 },
    );
    const previous = process.env.PYRO_QEMU;
    process.env.PYRO_QEMU = fake;
    try {
      const cache = path.join(dir, "host");
      expect(findQemu(cache)?.version).toBe("9.9.1");
      expect(findQemu(cache)?.version).toBe("9.9.1");
      expect(fs.readFileSync(calls, "utf8")).toBe("x\n");
      // A changed binary is asked again.
      fs.writeFileSync(
        fake,
        `#!/bin/sh\necho x >> '${calls}'\necho 'QEMU emulator version 10.0.0'\n`,
        { mode: 0o755 },
      );
      expect(findQemu(cache)?.version).toBe("10.0.0");
      expect(fs.readFileSync(calls, "utf8")).toBe("x\nx\n");
    } finally {
      if (previous === undefined) delete process.env.PYRO_QEMU;
      else process.env.PYRO_QEMU = previous;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
