#!/usr/bin/env bash
# The vm level's groundwork, measured: boot to agent-ready and `true` in a fresh VM against a bare
# boot of the same kernel (the floor), a run of `true` in a booted VM, destroy, and one idle VM's
# host memory (PSS of QEMU, virtiofsd and their jail's wrappers). See bench/vm-boot.ts.
# Usage: sudo bash bench/vm-boot.sh [ROUNDS]   (default 3; boots are seconds each under TCG)
#   VM_MEMORY_MIB (default 256): guest memory; VM_SETTLE (default 3): seconds idle before measuring.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v qemu-system-x86_64 >/dev/null || { echo "bench/vm-boot.sh: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)" >&2; exit 1; }
npx tsc -p tsconfig.test.json
exec node dist-test/bench/vm-boot.js "${1:-3}"
