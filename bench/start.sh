#!/usr/bin/env bash
# `run` of a trivial container with stockade (namespaces and sentry) and its peers side by side (hyperfine), and stockade's per-call cost.
# Usage: sudo bash bench/start.sh [RUNS]   (root: it creates containers)
#        STOCKADE_BEFORE=/path/to/other/checkout sudo bash bench/start.sh [RUNS]: that build's `do -- true` too, in the same run
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-30}"
# Clients (containerd, podman) do not set it; in this sandbox it costs every Node start 70 ms.
unset NODE_EXTRA_CA_CERTS
work=$(mktemp -d /tmp/stockade-bench.XXXXXX)
mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
ln -s busybox "$work/bundle/rootfs/bin/true"
# One config for all runtimes: runc's default, running /bin/true without a terminal.
runc spec --bundle "$work/bundle"
node -e '
const fs = require("fs"); const p = process.argv[1]; const c = JSON.parse(fs.readFileSync(p));
c.process.terminal = false; c.process.args = ["/bin/true"]; fs.writeFileSync(p, JSON.stringify(c));
' "$work/bundle/config.json"
stockade="$PWD/bin/stockade"
# The warm path (the default, said explicitly): a planner serves the root (made here: a root that does not exist yet goes cold);
# hyperfine's warm-up runs start it. The cold path: STOCKADE_PLANNER=off, every call its own Node.
# `do` is served by the planner too (its root's first call, a warm-up, makes the root and starts one).
mkdir -p "$work/s5"
planner_pids() { for p in $(pgrep -f stockade-planner.js); do tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "STOCKADE_PLANNER_SERVE=$work/s5" && echo "$p"; done; }
trap 'for p in $(planner_pids); do kill "$p"; done; rm -rf "$work"' EXIT
cmds=(-n "node -e 0" "node -e 0"
      -n "stockade list (one CLI call)" "env STOCKADE_PLANNER=off $stockade --root $work/s0 list -q"
      -n "stockade run" "env STOCKADE_PLANNER=off $stockade --root $work/s1 run -b $work/bundle bench-s"
      -n "stockade run (planner, warm)" "env STOCKADE_PLANNER=on $stockade --root $work/s5 run -b $work/bundle bench-w"
      -n "stockade run (sentry)" "$stockade --root $work/s2 --isolation sentry run -b $work/bundle bench-ss"
      -n "stockade do -- true" "$stockade --root $work/s3 do -T -- true"
      -n "stockade do -- true (cold)" "env STOCKADE_PLANNER=off $stockade --root $work/s6 do -T -- true"
      -n "stockade do -- true (sentry)" "$stockade --root $work/s4 do -T --isolation sentry -- true")
# A build to compare `do` with (issue 19's goal: no dearer than before), run alongside this one's.
# A build from before do's terminal (issue 19's first commits) has no -T; hyperfine's stdin is no
# terminal, so -T changes nothing for this one either.
if [ -n "${STOCKADE_BEFORE:-}" ]; then
  notty=-T
  "$STOCKADE_BEFORE/bin/stockade" --root "$work/b0" do -T -- true 2>/dev/null </dev/null || notty=
  cmds+=(-n "before: stockade do -- true" "$STOCKADE_BEFORE/bin/stockade --root $work/b3 do $notty -- true"
         -n "before: stockade do -- true (sentry)" "$STOCKADE_BEFORE/bin/stockade --root $work/b4 do $notty --isolation sentry -- true")
fi
command -v runc >/dev/null && cmds+=(-n "runc run" "runc --root $work/r1 run -b $work/bundle bench-r")
# The floor of any runtime whose every call is a Node process (DESIGN.md): Node, doing nothing of its
# own, hands the whole run to runc. Against runc this is what Node's start-up alone costs a `run`.
command -v runc >/dev/null && cmds+=(-n "node + runc run (floor)" "node -e \"require('child_process').spawnSync('runc', ['--root', '$work/r2', 'run', '-b', '$work/bundle', 'bench-f'], { stdio: 'inherit' })\"")
# crun refuses this hybrid cgroup layout unless the cgroup2 mount is hidden in a private mount namespace.
command -v crun >/dev/null && cmds+=(-n "crun run (in unshare -m)" "unshare -m sh -c 'umount -l /sys/fs/cgroup/unified 2>/dev/null; exec crun --root $work/c1 run -b $work/bundle bench-c'")
command -v runsc >/dev/null && cmds+=(-n "runsc run" "runsc --root $work/g1 --network=none run --bundle $work/bundle bench-g")
hyperfine --warmup 3 --runs "$runs" -N --export-json "$work/result.json" "${cmds[@]}" >&2
# The planner's proportional share of memory while resident (goal: at most 40 MB), after as many
# calls as hyperfine made (the one it served has idled out by now: the other benchmarks take minutes).
for i in $(seq "$runs"); do "$stockade" --root "$work/s5" run -b "$work/bundle" bench-w; done
pss=0
for p in $(planner_pids); do pss=$(awk '/^Pss:/ { print $2 }' /proc/$p/smaps_rollup); done
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1])).results;
const by = Object.fromEntries(r.map((x) => [x.command, x.mean * 1000]));
const s = by["stockade run"], node = by["node -e 0"], call = by["stockade list (one CLI call)"];
console.log("\nmean ms:"); for (const [k, v] of Object.entries(by)) console.log(`  ${k.padEnd(28)} ${v.toFixed(1)}`);
console.log(`\nstockade per-call cost above node -e 0: ${(call - node).toFixed(1)} ms (a call ${call.toFixed(1)} ms, node ${node.toFixed(1)} ms)`);
for (const peer of ["runc run", "crun run (in unshare -m)", "runsc run"]) if (by[peer]) console.log(`stockade run / ${peer}: ${(s / by[peer]).toFixed(2)}x`);
// The goals of issue 16: the warm path at most 1.0x runc run; the planner at most 40 MB PSS resident.
const warm = by["stockade run (planner, warm)"];
for (const peer of ["runc run", "crun run (in unshare -m)", "runsc run"]) if (by[peer]) console.log(`stockade run (planner, warm) / ${peer}: ${(warm / by[peer]).toFixed(2)}x`);
console.log(`stockade run (planner, warm) / stockade run (cold): ${(warm / s).toFixed(2)}x`);
console.log(`planner PSS while resident: ${(Number(process.argv[2]) / 1024).toFixed(1)} MB (goal 40 MB)`);
const floor = by["node + runc run (floor)"];
if (floor && by["runc run"]) console.log(`floor of a Node-fronted run (node handing the run to runc) / runc run: ${(floor / by["runc run"]).toFixed(2)}x; stockade run / that floor: ${(s / floor).toFixed(2)}x`);
for (const [k, ref] of [["stockade do -- true", "stockade do -- true"], ["stockade do -- true (cold)", "stockade do -- true"], ["stockade do -- true (sentry)", "stockade do -- true (sentry)"]]) if (by[`before: ${ref}`]) console.log(`${k}: this build / the one before: ${(by[k] / by[`before: ${ref}`]).toFixed(2)}x`);
if (by["stockade do -- true (cold)"]) console.log(`stockade do -- true (planner, warm) / (cold): ${(by["stockade do -- true"] / by["stockade do -- true (cold)"]).toFixed(2)}x`);
for (const peer of ["runc run"]) if (by[peer]) console.log(`stockade do -- true (planner, warm) / ${peer}: ${(by["stockade do -- true"] / by[peer]).toFixed(2)}x`);
// The sentry level against gVisor, the runtime it answers: both put a kernel of their own between the workload and the host.
if (by["runsc run"]) console.log(`stockade run --isolation sentry / runsc run: ${(by["stockade run (sentry)"] / by["runsc run"]).toFixed(2)}x`);
' "$work/result.json" "$pss"
