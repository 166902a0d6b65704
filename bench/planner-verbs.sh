#!/usr/bin/env bash
# The verbs the planner serves besides create, run and exec (list, spec, features, images, events --stats,
# update --resources -, run --image), each warm (served by the root's planner) and cold
# (STOCKADE_PLANNER=off: a Node per call), side by side in one hyperfine run; prints each pair's ratio.
# Usage: sudo bash bench/planner-verbs.sh [RUNS]   (root: it creates containers; needs hyperfine and /bin/busybox)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"
# Clients (containerd, podman) do not set it; in this sandbox it costs every Node start 70 ms.
unset NODE_EXTRA_CA_CERTS
[ -f dist-test/test/unit/image/build.js ] || npx tsc -p tsconfig.test.json
work=$(mktemp -d /tmp/stockade-bench-verbs.XXXXXX)
stockade="$PWD/bin/stockade"
planner_pids() { for p in $(pgrep -f stockade-planner.js); do tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "STOCKADE_PLANNER_SERVE=$work/$1" && echo "$p"; done; }
cleanup() {
  for r in warm cold; do "$stockade" --root "$work/$r" delete --force bench-c >/dev/null 2>&1 || true; done
  for p in $(planner_pids warm); do kill "$p"; done
  rm -rf "$work"
}
trap cleanup EXIT
# A container that runs (busybox sleep) in each root, and an image (busybox, one layer) in each root's store.
mkdir -p "$work/bundle/rootfs/bin" "$work/warm" "$work/cold" "$work/spec-warm" "$work/spec-cold"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
ln -s busybox "$work/bundle/rootfs/bin/sleep"
STOCKADE_PLANNER=off "$stockade" spec --bundle "$work/bundle"
node -e '
const fs = require("fs"); const p = process.argv[1]; const c = JSON.parse(fs.readFileSync(p));
c.process.terminal = false; c.process.args = ["/bin/sleep", "1000"]; fs.writeFileSync(p, JSON.stringify(c));
' "$work/bundle/config.json"
node -e '
const b = require("./dist-test/test/unit/image/build.js");
(async () => { b.ociLayout(process.argv[1], { layers: [{ data: await b.busyboxLayer(), gzip: true }], config: { Cmd: ["/bin/sh", "-c", ":"] }, tag: "v1" }); })();
' "$work/layout"
echo '{"pids":{"limit":100}}' > "$work/resources.json"
for r in warm cold; do
  STOCKADE_PLANNER=off "$stockade" --root "$work/$r" run -d -b "$work/bundle" bench-c
  STOCKADE_PLANNER=off "$stockade" --root "$work/$r" pull "oci:$work/layout:v1" >/dev/null
done
# Each command with its own --prepare (hyperfine takes one for all or one each): only spec's does
# something, giving each of its runs a directory without a config.json.
names=(); commands=(); prepares=()
one() { names+=("$1"); prepares+=("$2"); commands+=("$3"); }
add() { # name, then the arguments after --root ROOT
  local name=$1; shift
  one "$name (cold)" true "env STOCKADE_PLANNER=off $stockade --root $work/cold $*"
  one "$name (warm)" true "env STOCKADE_PLANNER=on $stockade --root $work/warm $*"
}
add "state" state bench-c
add "list" list
add "features" features
add "images" images
add "events --stats" events --stats bench-c
add "update --pids-limit" update --pids-limit 100 bench-c
add "run --image" run --image "oci:$work/layout:v1"
one "spec (cold)" "rm -f $work/spec-cold/config.json" "env STOCKADE_PLANNER=off $stockade --root $work/cold spec --bundle $work/spec-cold"
one "spec (warm)" "rm -f $work/spec-warm/config.json" "env STOCKADE_PLANNER=on $stockade --root $work/warm spec --bundle $work/spec-warm"
# stdin through a shell on both sides (hyperfine 1.15 has no --input): its cost is in both.
one "update --resources - (cold)" true "sh -c 'STOCKADE_PLANNER=off exec $stockade --root $work/cold update --resources - bench-c < $work/resources.json'"
one "update --resources - (warm)" true "sh -c 'STOCKADE_PLANNER=on exec $stockade --root $work/warm update --resources - bench-c < $work/resources.json'"
cmds=()
for i in "${!names[@]}"; do cmds+=(--prepare "${prepares[$i]}" -n "${names[$i]}" "${commands[$i]}"); done
hyperfine --warmup 3 --runs "$runs" -N --export-json "$work/result.json" "${cmds[@]}" >&2
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1])).results;
const by = Object.fromEntries(r.map((x) => [x.command, x]));
console.log("verb                      cold ms (±sd)     warm ms (±sd)     warm/cold");
for (const name of [...new Set(r.map((x) => x.command.replace(/ \((cold|warm)\)$/, "")))]) {
  const c = by[`${name} (cold)`], w = by[`${name} (warm)`];
  const f = (x) => `${(x.mean * 1000).toFixed(1).padStart(7)} (±${(x.stddev * 1000).toFixed(1)})`.padEnd(18);
  console.log(`${name.padEnd(26)}${f(c)}${f(w)}${(w.mean / c.mean).toFixed(2)}x`);
}
' "$work/result.json"
