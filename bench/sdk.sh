#!/usr/bin/env bash
# The SDK's costs beside its peers, in one run: create + exec `true` + dispose through the SDK per
# level against `runc run` of `true` (bench/sdk.ts), then `stockade pull` of a many-layer image
# against `skopeo copy` + `umoci unpack` of the same (bench/pull.sh). Prints medians and ratios.
# Usage: sudo bash bench/sdk.sh [RUNS] [VM_RUNS] [LAYERS] [PULL_RUNS]
#   (root; needs runc, umoci, skopeo, docker-registry, hyperfine; QEMU for the vm line)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"
vm_runs="${2:-3}"
layers="${3:-24}"
pull_runs="${4:-5}"
for t in runc umoci; do
  command -v "$t" >/dev/null || { echo "bench/sdk.sh: $t is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
done
npx tsc -p tsconfig.test.json
echo "== create + exec true + dispose (SDK) vs runc run true"
node dist-test/bench/sdk.js "$runs" "$vm_runs"
echo "== pull of a many-layer image: stockade pull vs skopeo copy + umoci unpack"
bash bench/pull.sh "$layers" "$pull_runs"
