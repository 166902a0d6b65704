#!/usr/bin/env bash
# A pod's start through Kubernetes' CRI, per runtime class on one private containerd: RunPodSandbox +
# CreateContainer + StartContainer to the first ExecSync answer, at every stockade level beside runc,
# interleaved in one run; prints medians per phase and the ratios. See bench/cri.ts.
# Usage: sudo bash bench/cri.sh [ROUNDS]   (default 5 pods per class; root: containerd and CNI need it)
set -euo pipefail
cd "$(dirname "$0")/.."
# Clients (containerd here) do not set it; in this sandbox it costs every Node start 70 ms.
unset NODE_EXTRA_CA_CERTS
npx tsc -p tsconfig.test.json
exec node dist-test/bench/cri.js "${1:-5}"
