#!/usr/bin/env bash
# Installs what stockade and its tests need on a fresh Debian 12 machine, then builds it.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
# podman, docker.io and containerd: the client tier (test/clients) runs each of them against stockade.
# docker-registry, skopeo, umoci: the image tests run a registry and push to it; bench/pull.sh compares with skopeo + umoci.
# attr: setfattr writes overlayfs opaque-directory markers when layers are unpacked.
# apparmor: where the kernel has AppArmor on, dockerd and podman load their default profile with
# apparmor_parser and refuse to start any container without it (it is only a Recommends).
# containernetworking-plugins: bridge, host-local and loopback give the CRI test's pods (test/cri) their network.
# qemu-system-x86: the vm level's VMM (qemu-system-x86_64 -M microvm) and virtiofsd (from
# qemu-system-common); the guest kernel is fetched with apt-get download on first use.
# cpio: scripts/cgroup-v2-guest.sh packs its guest's initramfs with it.
# curl, openjdk-17-jdk-headless: programs no one here wrote, run under the sentry and namespaces
# (test/integration/sentry-peers.test.ts: an HTTP client, a JVM sizing its heap from the limit).
for pkg in gcc make g++ python3 libc6-dev busybox-static procps util-linux runc crun runsc hyperfine iproute2 \
  podman docker.io containerd containernetworking-plugins apparmor qemu-system-x86 docker-registry skopeo umoci attr cpio \
  curl openjdk-17-jdk-headless; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# --packages-only: the Debian packages alone (CI runs npm ci itself).
[ "${1:-}" = "--packages-only" ] && exit 0
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund
else
  npm run build
fi
