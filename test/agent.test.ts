/**
 * The guest agent in a real guest, over the real virtio-serial channel:
 * multiplexed exec, environment and cwd, process-group timeouts, files, and
 * tar streams in and out.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchVm, type Launched } from "../src/boot/launch.js";
import { GUEST_NODE } from "../src/environments/guest-node.js";
import { launchContext } from "./helpers.js";

let launched: Launched;

beforeAll(async () => {
  launched = await launchVm(launchContext(), {
    environment: "debian:12",
    vcpus: 1,
    memMib: 1024,
    ephemeral: true,
  });
});

afterAll(async () => {
  await launched?.vm.destroy();
});

describe("guest agent", () => {
  it("says hello with the guest kernel", () => {
    expect(launched.vm.hello.kernel_release).toBe(launched.environment.manifest.kernel_release);
    expect(launched.vm.hello.protocol_version).toBe(1);
  });

  it("runs on the pinned Node LTS from the runtime disk", async () => {
    const version = await launched.vm.agent.exec({ argv: ["/opt/pyro/bin/node", "--version"] });
    expect(version.stdout.toString().trim()).toBe(`v${GUEST_NODE.version}`);
    const agents = await launched.vm.agent.exec({
      argv: ["sh", "-c", "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"],
    });
    expect(agents.stdout.toString()).toMatch(/\/opt\/pyro\/bin\/node .*\/opt\/pyro\/agent\.js/);
  });

  it("runs many commands at once over one channel", async () => {
    const agent = launched.vm.agent;
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        agent.exec({ argv: ["sh", "-c", `sleep 0.$((RANDOM % 5)); echo ${i}`] }),
      ),
    );
    expect(results.map((r) => r.stdout.toString().trim())).toEqual([
      "0",
      "1",
      "2",
      "3",
      "4",
      "5",
      "6",
      "7",
    ]);
  });

  it("passes environment, cwd and stdin", async () => {
    const result = await launched.vm.agent.exec(
      {
        argv: ["sh", "-c", 'echo "$GREETING from $(pwd)"; cat'],
        env: { GREETING: "hello" },
        cwd: "/tmp",
      },
      { input: Buffer.from("piped in\n") },
    );
    expect(result.stdout.toString()).toBe("hello from /tmp\npiped in\n");
  });

  it("kills the whole process group on timeout", async () => {
    const agent = launched.vm.agent;
    const result = await agent.exec({
      argv: ["sh", "-c", "sleep 300 & echo $! > /tmp/bg.pid; sleep 300"],
      timeout_ms: 1500,
    });
    expect(result.timed_out).toBe(true);
    const check = await agent.exec({
      argv: ["sh", "-c", "kill -0 $(cat /tmp/bg.pid) 2>/dev/null && echo alive || echo gone"],
    });
    expect(check.stdout.toString().trim()).toBe("gone");
  });

  it("reaps orphans (PID 1 is a real init)", async () => {
    const agent = launched.vm.agent;
    await agent.exec({ argv: ["sh", "-c", "(sleep 0.2 &) ; true"] });
    await new Promise((r) => setTimeout(r, 1500));
    const zombies = await agent.exec({ argv: ["sh", "-c", "ps -eo stat= | grep -c '^Z' || true"] });
    expect(zombies.stdout.toString().trim()).toBe("0");
  });

  it("reads and writes files, bounded", async () => {
    const agent = launched.vm.agent;
    const content = Buffer.concat([
      Buffer.from("line one\n"),
      Buffer.alloc(200_000, 0x7a),
      Buffer.from([0, 0xff]),
    ]);
    const written = await agent.writeFile("/workspace/sub/data.bin", content, {
      parents: true,
      mode: 0o640,
    });
    expect(written.bytes_written).toBe(content.length);
    const whole = await agent.readFile("/workspace/sub/data.bin", 1 << 20);
    expect(whole.truncated).toBe(false);
    expect(whole.content.equals(content)).toBe(true);
    const cut = await agent.readFile("/workspace/sub/data.bin", 9);
    expect(cut).toMatchObject({ truncated: true, size: content.length });
    expect(cut.content.toString()).toBe("line one\n");
    const mode = await agent.exec({ argv: ["stat", "-c", "%a", "/workspace/sub/data.bin"] });
    expect(mode.stdout.toString().trim()).toBe("640");
    await expect(agent.readFile("/workspace/missing", 10)).rejects.toMatchObject({
      code: "file_not_found",
      details: { guest_code: "not_found" },
    });
  });

  it("replaces a file so that a .pyc of its old content is never used", async () => {
    // Python trusts a .pyc while the source's size and whole-second mtime match.
    const agent = launched.vm.agent;
    const write = (body: string) =>
      agent.writeFile(
        "/workspace/pyc/calc.py",
        Buffer.from(`def add(a, b):\n    return ${body}\n`),
        {
          parents: true,
        },
      );
    const add = async () => {
      const run = await agent.exec({
        argv: ["python3", "-c", "import calc; print(calc.add(2, 3))"],
        cwd: "/workspace/pyc",
      });
      return run.stdout.toString().trim();
    };
    await write("a - b");
    expect(await add()).toBe("-1");
    await write("a * b");
    expect(await add()).toBe("6");
    const mtime = async () =>
      (
        await agent.exec({ argv: ["stat", "-c", "%Y", "/workspace/pyc/calc.py"] })
      ).stdout.toString();
    const first = await mtime();
    await write("a + b");
    expect(await mtime()).not.toBe(first);
    expect(await add()).toBe("5");
  });

  it("moves directory trees in and out as tar streams", async () => {
    const agent = launched.vm.agent;
    const src = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-tar-"));
    fs.mkdirSync(path.join(src, "a", "b"), { recursive: true });
    fs.writeFileSync(path.join(src, "a", "b", "file.txt"), "nested\n");
    fs.writeFileSync(path.join(src, "top.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
    const archive = execFileSync("tar", ["-C", src, "-cf", "-", "."]);
    await agent.tarIn("/workspace/seeded", archive);
    const listed = await agent.exec({
      argv: ["sh", "-c", "cd /workspace/seeded && find . -type f | sort && ./top.sh"],
    });
    expect(listed.stdout.toString()).toBe("./a/b/file.txt\n./top.sh\nhi\n");

    const chunks: Buffer[] = [];
    const out = await agent.tarOut("/workspace/seeded", (bytes) => chunks.push(bytes));
    const tarball = Buffer.concat(chunks);
    expect(out.bytes).toBe(tarball.length);
    const dest = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-tar-out-"));
    execFileSync("tar", ["-C", dest, "-xf", "-"], { input: tarball });
    expect(fs.readFileSync(path.join(dest, "a", "b", "file.txt"), "utf8")).toBe("nested\n");
    expect(fs.statSync(path.join(dest, "top.sh")).mode & 0o777).toBe(0o755);
    fs.rmSync(src, { recursive: true, force: true });
    fs.rmSync(dest, { recursive: true, force: true });
  });
});
