/**
 * The doctor's network line: can this host give a guest a network the way
 * pyro does (QEMU user-mode networking, socat, an egress proxy on a unix
 * socket), and, with a booted guest, does the guest reach the proxy?
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { EgressProxy } from "../network/egress-proxy.js";
import { GUEST_NETWORK } from "../network/addresses.js";
import type { AgentClient } from "../protocol/client.js";
import { findExecutable } from "../util/which.js";
import type { QemuInfo } from "../vm/qemu.js";

export interface NetworkCapability {
  ok: boolean;
  ms: number | null;
  detail: string;
  fix?: string;
}

/** What the host needs for networked guests, checked without booting one. */
export async function checkHostNetwork(qemu: QemuInfo | undefined): Promise<NetworkCapability> {
  if (!qemu) return { ok: false, ms: null, detail: "no QEMU", fix: "run `pyro setup`" };
  const backends = await promisify(execFile)(qemu.binary, ["-netdev", "help"], {
    timeout: 10_000,
  }).then(
    (out) => out.stdout,
    () => "",
  );
  if (!/^user$/m.test(backends)) {
    return {
      ok: false,
      ms: null,
      detail: `${qemu.binary} has no user-mode networking (built without slirp)`,
      fix: "install Debian's qemu-system-x86 (built with libslirp)",
    };
  }
  if (!findExecutable("socat")) {
    return {
      ok: false,
      ms: null,
      detail: "socat is missing (it carries guest connections to the egress proxy)",
      fix: "run `pyro setup` (apt-get install socat)",
    };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-doctor-"));
  try {
    const proxy = await EgressProxy.listen(path.join(dir, "egress.sock"));
    await proxy.close();
  } catch (error) {
    return {
      ok: false,
      ms: null,
      detail: `the egress proxy cannot listen: ${(error as Error).message}`,
      fix: "check that the temporary directory accepts unix sockets (TMPDIR)",
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return {
    ok: true,
    ms: null,
    detail: "user-mode networking (no root), socat and the egress proxy are available",
  };
}

/**
 * From inside a booted networked guest: ask the egress proxy something it
 * answers itself (busybox nc from pyro's runtime disk, so any environment
 * works), proving the whole path guest → QEMU → socat → proxy.
 */
export async function probeGuestNetwork(agent: AgentClient): Promise<NetworkCapability> {
  const started = Date.now();
  const { proxyAddress, proxyPort } = GUEST_NETWORK;
  const result = await agent.exec({
    argv: [
      "/opt/pyro/bin/busybox",
      "sh",
      "-c",
      `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /opt/pyro/bin/busybox nc -w 10 ${proxyAddress} ${proxyPort}`,
    ],
    timeout_ms: 20_000,
  });
  const ms = Date.now() - started;
  const answer = result.stdout.toString();
  if (answer.includes("egress proxy")) {
    return { ok: true, ms, detail: `a guest reached pyro's egress proxy in ${ms} ms` };
  }
  return {
    ok: false,
    ms,
    detail: `a guest could not reach pyro's egress proxy (exit ${result.exit_code}: ${result.stderr.toString().trim() || answer.trim() || "no answer"})`,
    fix: "run `pyro doctor --json` and report the detail",
  };
}
