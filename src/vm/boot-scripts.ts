/**
 * The two shell scripts that bring a guest up, run by busybox:
 *
 * 1. INITRAMFS_INIT, /init of the initramfs pyro builds: loads the virtio
 *    modules, finds the root and runtime disks by label, switches root.
 * 2. RUNTIME_INIT, /opt/pyro/init on the read-only runtime disk: PID 1 of the
 *    real system. Mounts the runtime filesystems and keeps the agent running.
 *    As PID 1, busybox ash reaps orphans while it waits for the agent.
 */

import { GUEST_NETWORK } from "../network/addresses.js";

export const ROOT_LABEL = "pyro-root";
export const RUNTIME_LABEL = "pyro-runtime";
/** Printed on the console by the initramfs when booted with pyro.probe=1. */
export const PROBE_MARKER = "PYRO-PROBE-OK";

export const INITRAMFS_INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /bin /proc /sys /dev /newroot
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "pyro-init: $*" > /dev/console; sync; reboot -f; }
while read -r module; do insmod "/modules/$module" 2>/dev/null; done < /modules/order
case " $(cat /proc/cmdline) " in
  *" pyro.probe=1 "*) echo "${PROBE_MARKER}" > /dev/console; reboot -f ;;
esac
root=""; runtime=""; tries=0
while [ -z "$root" ] || [ -z "$runtime" ]; do
  root=$(findfs LABEL=${ROOT_LABEL} 2>/dev/null)
  runtime=$(findfs LABEL=${RUNTIME_LABEL} 2>/dev/null)
  tries=$((tries + 1)); [ $tries -gt 400 ] && fail "disks not found (root=$root runtime=$runtime)"
  [ -z "$root" ] || [ -z "$runtime" ] && sleep 0.05
done
mount -t ext4 -o rw,noatime "$root" /newroot || fail "cannot mount root disk $root"
mkdir -p /newroot/opt/pyro
mount -t ext4 -o ro,noatime "$runtime" /newroot/opt/pyro || fail "cannot mount runtime disk $runtime"
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot /opt/pyro/init
`;

export const RUNTIME_INIT = `#!/opt/pyro/bin/busybox sh
B=/opt/pyro/bin/busybox
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
$B mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
$B mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
$B mkdir -p /dev/pts /dev/shm /workspace /run/pyro
$B mount -t devpts -o mode=0620,ptmxmode=0666 devpts /dev/pts
$B mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
$B ln -sf /proc/self/fd /dev/fd 2>/dev/null
$B hostname pyro
$B ip link set lo up 2>/dev/null
# A networked guest (network/policy.ts): a static address, no DHCP wait, and
# no default route, so anything that does not go through the egress proxy
# fails at once instead of timing out.
if [ -e /sys/class/net/${GUEST_NETWORK.device} ]; then
  $B ip link set ${GUEST_NETWORK.device} up
  $B ip addr add ${GUEST_NETWORK.guestAddress}/${GUEST_NETWORK.prefixLength} dev ${GUEST_NETWORK.device}
  $B grep -q ' ${GUEST_NETWORK.hostName}$' /etc/hosts 2>/dev/null ||
    echo '${GUEST_NETWORK.hostAddress} ${GUEST_NETWORK.hostName}' >> /etc/hosts
fi
export UV_THREADPOOL_SIZE=8
# --no-maglev: under software emulation every newly compiled function is
# translated again by QEMU; V8's Maglev tier adds such compiles for warm code
# (measured with Node 24: +25 ms per standby take-over, +10 ms per exec).
while true; do
  /opt/pyro/bin/node --no-maglev /opt/pyro/agent.js
  echo "pyro-init: agent exited with status $?; restarting" > /dev/console
  $B sleep 0.5
done
`;
