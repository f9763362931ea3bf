/**
 * Network policies (contract §4 "Network").
 *
 * Every networked guest gets QEMU user-mode networking (no root, no TAP)
 * in restricted mode: the guest reaches nothing directly. What it may reach
 * goes through explicit forwards that pyro sets up:
 *   PROXY   (10.0.2.100:3128) pyro's egress proxy on the host, which refuses
 *                              the host itself and private ranges (egress-proxy.ts)
 *   HOST    (10.0.2.254:PORT)  the host's 127.0.0.1:PORT, only for --allow-host-port
 *                              (also named host.pyro.internal in the guest's /etc/hosts)
 * and, with egress+published-ports, host ports on 127.0.0.1 forwarded in.
 * The plan (addresses.ts) is the same for every guest: each VM has its own
 * user-mode stack, so restored and forked guests never collide.
 */
import { ErrorCodes, PyroError } from "../errors.js";

export const NETWORK_POLICIES = ["off", "egress", "egress+published-ports"] as const;
export type NetworkPolicy = (typeof NETWORK_POLICIES)[number];

export function parseNetworkPolicy(value: string): NetworkPolicy {
  if ((NETWORK_POLICIES as readonly string[]).includes(value)) return value as NetworkPolicy;
  throw new PyroError(
    ErrorCodes.UsageError,
    `unknown network policy "${value}": use one of ${NETWORK_POLICIES.join(", ")}`,
  );
}

/** Whether guests under `policy` have a network device at all. */
export function hasNetwork(policy: NetworkPolicy): boolean {
  return policy !== "off";
}

export function allowsPublishing(policy: NetworkPolicy): boolean {
  return policy === "egress+published-ports";
}

/** A TCP port number from user input, or a usage error naming `what`. */
export function parsePort(value: string | number, what: string): number {
  const port = typeof value === "number" ? value : Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535 || String(value).trim() === "") {
    throw new PyroError(
      ErrorCodes.UsageError,
      `${what} must be a port from 1 to 65535, got "${value}"`,
    );
  }
  return port;
}

/** Host ports a guest may reach (--allow-host-port): checked, deduplicated, sorted. */
export function parseAllowedHostPorts(
  policy: NetworkPolicy,
  ports: readonly (string | number)[],
): number[] {
  if (ports.length === 0) return [];
  if (!hasNetwork(policy)) {
    throw new PyroError(
      ErrorCodes.UsageError,
      "--allow-host-port needs a network: use --network-policy egress (or egress+published-ports)",
    );
  }
  return [...new Set(ports.map((p) => parsePort(p, "an allowed host port")))].sort((a, b) => a - b);
}
