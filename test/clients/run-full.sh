#!/usr/bin/env bash
# The full client tier: every scenario, under stockade and under runc, with podman, Docker and
# containerd (ctr), each on private state; prints a scenario x client x runtime table at the end.
# As root, after npm run build. npm test runs the trimmed form (stockade only, fewer scenarios).
#   bash test/clients/run-full.sh [podman|docker|containerd]...
set -euo pipefail
cd "$(dirname "$0")/../.."
npx tsc -p tsconfig.test.json
clients=("$@")
[ "${#clients[@]}" -gt 0 ] || clients=(podman docker containerd)
files=()
for c in "${clients[@]}"; do files+=("dist-test/test/clients/$c.test.js"); done
results=$(mktemp /tmp/stockade-clients-XXXXXX.jsonl)
trap 'rm -f "$results"' EXIT
status=0
STOCKADE_CLIENT_TESTS=full STOCKADE_CLIENT_MATRIX="$results" \
  node --test --test-concurrency=1 --test-reporter=spec "${files[@]}" || status=$?
echo
node dist-test/test/clients/matrix.js "$results"
exit "$status"
