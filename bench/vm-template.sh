#!/usr/bin/env bash
# Issue 18's goals, measured in one run: start to workload (a `true` run) cold-booted against
# restored from a template and against a pool of pre-booted VMs, and the idle host memory (PSS)
# per VM with ten of each running at once. Prints the ratios. See bench/vm-template.ts.
# Usage: sudo bash bench/vm-template.sh [ROUNDS] [COUNT]   (defaults 3 and 10)
#   VM_MEMORY_MIB (default 256); VM_SETTLE (default 5): seconds idle before memory is read.
# bench/vm.sh may call this for its restore section.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v qemu-system-x86_64 >/dev/null || { echo "bench/vm-template.sh: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)" >&2; exit 1; }
npx tsc -p tsconfig.test.json
exec node dist-test/bench/vm-template.js "${1:-3}" "${2:-10}"
