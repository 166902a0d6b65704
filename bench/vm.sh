#!/usr/bin/env bash
# The vm level through the CLI, against its floor and the namespaces level, in one run (issue 13 item 9):
#   (a) `stockade --isolation vm run` of a trivial process (boot to the workload's exit status, the
#       VM torn down) against the floor: a bare QEMU boot of the same kernel and initramfs that
#       powers off as soon as its init runs (src/vm/accel-probe.ts probeArgs), interleaved;
#   (b) idle memory of one `run -d` vm container: PSS of the keeper, QEMU, virtiofsd and their
#       wrappers (every process of the container's cgroup), summed;
#   (c) getppid and stat inside the guest (bench/syscalls.c) against the namespaces level.
# Prints ratios and the goals: boot within 1.2x the floor; 64 MB PSS per idle vm container.
# Usage: sudo bash bench/vm.sh [ROUNDS]   (default 3; TCG boots take seconds each)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v qemu-system-x86_64 >/dev/null || { echo "bench/vm.sh: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)" >&2; exit 1; }
command -v gcc >/dev/null || { echo "bench/vm.sh: gcc is not installed" >&2; exit 1; }
# In this sandbox it costs every Node start 70 ms (bin/stockade drops it too).
unset NODE_EXTRA_CA_CERTS
npx tsc -p tsconfig.test.json
exec node dist-test/bench/vm.js "${1:-3}"
