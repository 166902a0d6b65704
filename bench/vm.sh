#!/usr/bin/env bash
# The vm level through the CLI, against its floor and the namespaces level, in one run (issue 13
# item 9, issue 18 item 6), booted cold and restored from the template side by side:
#   (a) `stockade --isolation vm run` of a trivial process (start to the workload's exit status, the
#       VM torn down), cold (STOCKADE_VM_TEMPLATE=0) and from the template, against the floor: a
#       bare QEMU boot of the cold path's kernel and initramfs that powers off as soon as its init
#       runs (src/vm/accel-probe.ts probeArgs), interleaved;
#       and start to workload, cold and from the template: a `run` of `echo` to its first output;
#   (b) idle memory per container with COUNT `run -d` vm containers at once, cold, then from the
#       template: PSS of the keeper, QEMU, virtiofsd and their wrappers (every process of each
#       container's cgroup), summed, plus the template's memfd divided among the clones;
#   (c) getppid and stat inside the guest (bench/syscalls.c) against the namespaces level.
# Prints ratios and the goals: 13's boot within 1.2x the floor and 64 MB PSS per idle vm
# container; 18's template start within 0.25x cold and memory within 0.5x cold with ten idle.
# (bench/vm-template.sh measures the same at the API level, without the keeper, with a pool of
# pre-booted VMs beside them.)
# Usage: sudo bash bench/vm.sh [ROUNDS] [COUNT]   (defaults 3 and 10; TCG boots take seconds each)
#   VM_SETTLE (default 5): seconds idle before memory is read.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v qemu-system-x86_64 >/dev/null || { echo "bench/vm.sh: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)" >&2; exit 1; }
command -v gcc >/dev/null || { echo "bench/vm.sh: gcc is not installed" >&2; exit 1; }
# In this sandbox it costs every Node start 70 ms (bin/stockade drops it too).
unset NODE_EXTRA_CA_CERTS
npx tsc -p tsconfig.test.json
exec node dist-test/bench/vm.js "${1:-3}" "${2:-10}"
