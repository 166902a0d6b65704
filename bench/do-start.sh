#!/usr/bin/env bash
# `stockade do -- true` of this build beside another build's, in one hyperfine run (issue 19's goal:
# do costs no more than before), at namespaces and sentry, with `node -e 0` as the floor. At
# namespaces this build's do is served by the root's warm planner (the default; its first call,
# a warm-up, starts it) and, beside it, cold (STOCKADE_PLANNER=off, through env(1): about a
# millisecond more for env's own exec).
# Usage: sudo STOCKADE_BEFORE=/path/to/other/checkout bash bench/do-start.sh [RUNS]
#   The other checkout is built (npm ci); e.g. the commit before issue 19's first (git archive
#   d040281~1 | tar -x -C /tmp/before && (cd /tmp/before && npm ci)).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"
before="${STOCKADE_BEFORE:?STOCKADE_BEFORE must name a built checkout to compare with}"
unset NODE_EXTRA_CA_CERTS
work=$(mktemp -d /tmp/stockade-bench-do.XXXXXX)
# The warm planner's root goes with the run: it leaves within seconds of its root's removal.
trap 'rm -rf "$work"' EXIT
stockade="$PWD/bin/stockade"
# A build from before do's terminal has no -T; hyperfine's stdin is no terminal, so -T changes
# nothing for this one either.
notty=-T
"$before/bin/stockade" --root "$work/b0" do -T -- true 2>/dev/null </dev/null || notty=
hyperfine --warmup 3 --runs "$runs" -N --export-json "$work/result.json" \
  -n "node -e 0" "node -e 0" \
  -n "do -- true" "$stockade --root $work/s1 do -T -- true" \
  -n "do -- true (cold)" "env STOCKADE_PLANNER=off $stockade --root $work/s3 do -T -- true" \
  -n "before: do -- true" "$before/bin/stockade --root $work/b1 do $notty -- true" \
  -n "do -- true (sentry)" "$stockade --root $work/s2 do -T --isolation sentry -- true" \
  -n "before: do -- true (sentry)" "$before/bin/stockade --root $work/b2 do $notty --isolation sentry -- true" >&2
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1])).results;
const by = Object.fromEntries(r.map((x) => [x.command, x]));
console.log("\nmean ms (median):"); for (const [k, v] of Object.entries(by)) console.log(`  ${k.padEnd(28)} ${(v.mean * 1000).toFixed(1)} (${(v.median * 1000).toFixed(1)})`);
for (const [k, ref] of [["do -- true", "do -- true"], ["do -- true (cold)", "do -- true"], ["do -- true (sentry)", "do -- true (sentry)"]]) {
  const a = by[k], b = by[`before: ${ref}`];
  console.log(`${k}: this build / before: ${(a.mean / b.mean).toFixed(2)}x mean, ${(a.median / b.median).toFixed(2)}x median`);
}
' "$work/result.json"
