#!/usr/bin/env bash
# A vm container's `run` of `true` broken into its steps (STOCKADE_TIMING marks of the CLI and the
# keeper on one time line), from the template (and booted cold with VM_TRACE_COLD=1). See bench/vm-trace.ts.
# Usage: sudo bash bench/vm-trace.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v qemu-system-x86_64 >/dev/null || { echo "bench/vm-trace.sh: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)" >&2; exit 1; }
# In this sandbox it costs every Node start 70 ms (bin/stockade drops it too).
unset NODE_EXTRA_CA_CERTS
npx tsc -p tsconfig.test.json
exec node dist-test/bench/vm-trace.js "${1:-3}"
