#!/usr/bin/env bash
# Runs test files inside a QEMU guest booted with cgroup v2 alone (cgroup_no_v1=all), so the
# cgroup suite meets a real v2 hierarchy with every controller: memory, cpu, cpuset, io, pids,
# hugetlb. A hybrid host such as this one binds those controllers to its v1 hierarchies, where
# cgroup v2 cannot have them; `npm test` covers what v2 can do here (freeze, device programs,
# hugetlb) and this covers the rest. Not part of npm test: under TCG it takes minutes (see
# docs/testing.md, "cgroup v2 for real", for the times measured and why).
#
# Usage: sudo bash scripts/cgroup-v2-guest.sh [NODE-TEST-FLAG ...] [TEST.js ...]
#   Default: the cgroup suite's "this host's layout" half of dist-test/test/integration/cgroups.test.js;
#   in the guest the host's layout is cgroup v2 alone, and the other half (a v2-only mount namespace
#   made on the host) would repeat it test for test. Arguments starting with -- go to node --test.
#   Run after npm run build and npx tsc -p tsconfig.test.json. Needs qemu-system-x86_64, cpio, a
#   static /bin/busybox and node; fetches Debian's cloud kernel (linux-image-cloud-amd64) with
#   apt-get download into $STOCKADE_GUEST_DIR (default /var/tmp/stockade-guest) once.
# The guest is an initramfs: busybox, node and its libraries, and this checkout at its own path;
# it runs `node --test` on the files as root and powers off. Exits with the tests' status.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${STOCKADE_GUEST_DIR:-/var/tmp/stockade-guest}
args=("$@")
[ ${#args[@]} -gt 0 ] || args=("--test-name-pattern=^cgroups: this host's layout" dist-test/test/integration/cgroups.test.js)
# Quoted for the guest's shell (busybox sh reads backslash escapes as bash writes them here).
test_args=$(printf '%q ' "${args[@]}")
for t in qemu-system-x86_64 cpio dpkg-deb apt-get node; do
  command -v "$t" >/dev/null || { echo "cgroup-v2-guest: $t is not installed" >&2; exit 2; }
done
[ -x /bin/busybox ] || { echo "cgroup-v2-guest: /bin/busybox (busybox-static) is not installed" >&2; exit 2; }

mkdir -p "$dir"
kernel=$(ls "$dir"/k/boot/vmlinuz-* 2>/dev/null | head -1 || true)
if [ -z "$kernel" ]; then
  pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ { print $2; exit }')
  [ -n "$pkg" ] || { echo "cgroup-v2-guest: no linux-image-cloud-amd64 package known to apt" >&2; exit 2; }
  (cd "$dir" && apt-get download "$pkg" >/dev/null 2>&1)
  # Only the kernel image: what the guest needs is built in (cgroups, BPF, namespaces, the 8250 console).
  mkdir -p "$dir/k"
  dpkg-deb --fsys-tarfile "$dir"/"$pkg"_*.deb | tar -x -C "$dir/k" --wildcards './boot/vmlinuz-*'
  rm -f "$dir"/"$pkg"_*.deb
  kernel=$(ls "$dir"/k/boot/vmlinuz-* | head -1)
fi

root=$(mktemp -d "$dir/root.XXXXXX")
trap 'rm -rf "$root" "$root.cpio"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,etc,newroot}
cp /bin/busybox "$root/bin/busybox"
for f in "$(command -v node)" $(ldd "$(command -v node)" | grep -o '/[^ ]*\.so[^ ]*') /lib64/ld-linux-x86-64.so.2; do
  mkdir -p "$root$(dirname "$f")"
  cp -L "$f" "$root$f"
done
mkdir -p "$root$repo"
# The build and its tests, without the compilers the guest never runs.
(cd "$repo" && tar -c --exclude=./.git --exclude=./node_modules/typescript --exclude=./node_modules/esbuild --exclude=./node_modules/@esbuild .) | tar -x -C "$root$repo"
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
node_bin=$(command -v node)

# Stage 1 copies itself into a tmpfs and switches to it: pivot_root, which every container
# start makes, refuses the initramfs itself as the old root.
cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t tmpfs -o size=3g tmpfs /newroot
for e in /*; do
  case "$e" in /proc|/sys|/dev|/newroot|/init) ;; *) cp -a "$e" /newroot/ ;; esac
done
mkdir -p /newroot/proc /newroot/sys /newroot/dev
umount /proc
exec switch_root /newroot /stage2
INIT
cat > "$root/stage2" <<STAGE
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs shm /dev/shm
# / is a tmpfs already, /tmp included (and the checkout with it, wherever it sits).
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "guest: Linux \$(uname -r), cgroup v2 alone, controllers: \$(cat /sys/fs/cgroup/cgroup.controllers)"
cd $repo
export PATH=$(dirname "$node_bin"):/bin HOME=/root
node --test --test-concurrency=1 ${test_args} 2>&1
echo "guest-result: \$?"
poweroff -f
STAGE
chmod +x "$root/init" "$root/stage2"
(cd "$root" && find . | cpio -o -H newc --quiet) > "$root.cpio"

# TCG: this machine's /dev/kvm runs only PVM guests. 4 GB: the initramfs, its tmpfs copy, the tests.
out=$(mktemp "$dir/out.XXXXXX")
qemu-system-x86_64 -accel tcg -M q35 -cpu max -smp 2 -m 4096 -nographic -no-reboot \
  -kernel "$kernel" -initrd "$root.cpio" \
  -append "console=ttyS0 cgroup_no_v1=all panic=-1 quiet rdinit=/init" | tee "$out"
status=$(sed -n 's/^guest-result: \([0-9]*\).*/\1/p' "$out" | tail -1)
rm -f "$out"
[ -n "$status" ] || { echo "cgroup-v2-guest: the guest did not report a result" >&2; exit 2; }
exit "$status"
