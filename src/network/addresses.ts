/**
 * The address plan every networked guest shares (see policy.ts), with no
 * imports: the guest agent bundles this file alone.
 */
export const GUEST_NETWORK = {
  subnet: "10.0.2.0/24",
  prefixLength: 24,
  guestAddress: "10.0.2.15",
  /** The user-mode stack's own gateway address; restricted, so it serves nothing. */
  gatewayAddress: "10.0.2.2",
  /** Where the host's allowed loopback ports appear to the guest (the gateway cannot carry forwards). */
  hostAddress: "10.0.2.254",
  hostName: "host.pyro.internal",
  proxyAddress: "10.0.2.100",
  proxyPort: 3128,
  /** The guest's interface (virtio-net, the only NIC). */
  device: "eth0",
} as const;

export const PROXY_URL = `http://${GUEST_NETWORK.proxyAddress}:${GUEST_NETWORK.proxyPort}`;

/** Environment every process in a networked guest gets: HTTP(S) through the egress proxy. */
export const GUEST_PROXY_ENV: Readonly<Record<string, string>> = (() => {
  const noProxy = `localhost,127.0.0.1,::1,${GUEST_NETWORK.hostAddress},${GUEST_NETWORK.hostName}`;
  return {
    http_proxy: PROXY_URL,
    https_proxy: PROXY_URL,
    HTTP_PROXY: PROXY_URL,
    HTTPS_PROXY: PROXY_URL,
    no_proxy: noProxy,
    NO_PROXY: noProxy,
    // Node 24+ honours the variables above for fetch and http only when asked.
    NODE_USE_ENV_PROXY: "1",
  };
})();
