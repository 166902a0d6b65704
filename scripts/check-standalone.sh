#!/usr/bin/env bash
# The repository stands alone: a copy of HEAD in an otherwise empty directory (no ../shared, no
# STOCKADE_OCI_SCHEMA) installs, builds, runs `stockade spec` and a `do`, and passes the OCI unit
# tests (those that compare with upstream's schema skip, saying why). .ci/run runs this so that a
# build input from outside the repository cannot come back unnoticed.
set -euo pipefail
cd "$(dirname "$0")/.."
base=$(mktemp -d)
trap 'rm -rf "$base"' EXIT
copy="$base/stockade"
mkdir "$copy"
git archive HEAD | tar -x -C "$copy"
cd "$copy"
unset STOCKADE_OCI_SCHEMA
[ ! -e ../shared ] || { echo "check-standalone: $base/shared exists" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
work="$base/work"
mkdir "$work"
(cd "$work" && "$copy/bin/stockade" spec && test -s config.json)
(cd "$copy" && bin/stockade --root "$base/state" do -- true)
npx tsc -p tsconfig.test.json
node --test --test-concurrency=1 dist-test/test/unit/oci/*.test.js dist-test/test/unit/layering.test.js
echo "check-standalone: a copy of HEAD in $copy built and ran with nothing beside it"
