#!/usr/bin/env bash
# CPU time per mediated call: the sentry (`stockade do --isolation sentry`) against the bare C
# supervisor of bench/c-supervisor.c, whose workload runs in its supervisor's cgroup
# (c-supervisor) or in a CPU cgroup of its own (c-supervisor-cg), as a container's workload runs
# apart from its sentry. For each: the serving thread's run time (/proc/PID/schedstat) across
# exactly N calls of `bench/syscalls cpu OP N`, which pauses before and after them, and the
# workload's; its wall clock per call; the run-queue wait and the voluntary and involuntary
# switches of the supervisor per call.
# For stat also the floor of a supervisor in Node with the same addon (bench/node-supervisor.js, handed
# the listener by c-supervisor --serve-with), in a CPU cgroup of its own with its workload: node-noop answers every call at once (RECV and SEND
# alone), node-stat makes the C supervisor's calls through the addon. Since the sentry joined its
# container's CPU cgroup, c-supervisor (its workload beside it) is its like-for-like peer.
# sentry-js is the same sentry with STOCKADE_SENTRY_FAST=0: every call served in TypeScript, none by
# the native fast path (src/sentry/fast-path.ts), so one run shows what the fast path changes.
# Why besides bench/syscalls.sh: on a loaded machine that bench's wall clock moves 2-5x from run to
# run, the CPU time far less; and the switches show how the calls are scheduled.
# Usage: sudo bash bench/supervisor-cpu.sh [ROUNDS]   (default 5, interleaved, median taken)
#   SUPERVISOR_CPU_OP (stat, or open: open+close), SUPERVISOR_CPU_N (calls per run, default 20000),
#   SUPERVISOR_CPU_PIN=N: every process on CPU N (taskset -c N)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
op="${SUPERVISOR_CPU_OP:-stat}"
n="${SUPERVISOR_CPU_N:-20000}"
pin=()
[ -n "${SUPERVISOR_CPU_PIN:-}" ] && pin=(taskset -c "$SUPERVISOR_CPU_PIN")
unset NODE_EXTRA_CA_CERTS
stockade="$PWD/bin/stockade"
for tool in gcc node; do command -v "$tool" >/dev/null || { echo "bench/supervisor-cpu.sh: $tool is not installed" >&2; exit 1; }; done

work=$(mktemp -d /tmp/stockade-supervisor-cpu.XXXXXX)
cgroups=()
cleanup() {
  set +e
  for root in "$work"/root; do
    [ -d "$root" ] || continue
    for id in $("$stockade" --root "$root" list -q 2>/dev/null); do "$stockade" --root "$root" delete --force "$id" >/dev/null 2>&1; done
  done
  for d in "${cgroups[@]}"; do rmdir "$d" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/prog"
gcc -static -O2 -Wall -o "$work/prog/syscalls" bench/syscalls.c
gcc -O2 -Wall -o "$work/c-supervisor" bench/c-supervisor.c

# The C supervisor's workload in a CPU cgroup of its own (bench/syscalls.sh does the same).
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  cgroups=("/sys/fs/cgroup/stockade-bench-cpu-$$")
else
  for c in cpu cpuacct; do
    [ -d "/sys/fs/cgroup/$c" ] && cgroups+=("$(readlink -f "/sys/fs/cgroup/$c")/stockade-bench-cpu-$$")
  done
fi
cg_args=()
for d in "${cgroups[@]}"; do
  case " ${cg_args[*]} " in *" $d/cgroup.procs "*) continue ;; esac
  mkdir -p "$d" && cg_args+=(--cgroup "$d/cgroup.procs")
done

names=(sentry sentry-js sentry-apart c-supervisor c-supervisor-cg c-supervisor-owncg)
# A command prefix that runs what follows in the bench's CPU cgroup(s), supervisor and workload alike.
own_cg=(sh -c 'for f in "$@"; do case "$f" in */cgroup.procs) echo $$ >"$f" ;; esac; done; shift "$1"; exec "$@"' sh "$((${#cg_args[@]} + 1))" "${cg_args[@]}")
[ "$op" = stat ] && names+=(node-noop node-stat)
out="$work/out"
mkdir -p "$out"
# One run: starts it, finds its serving thread and its workload, reads them in the pauses.
run() {
  local name=$1 log="$work/run.log" pid sup wl
  : >"$log"
  case "$name" in
    sentry|sentry-apart) "${pin[@]}" "$stockade" --root "$work/root" do --isolation sentry --user 0 --bind "$work/prog" --cwd "$work/prog" -- \
              "$work/prog/syscalls" cpu "$op" "$n" >"$log" 2>&1 & ;;
    # The same sentry with every call served in TypeScript (no native fast path: src/sentry/fast-path.ts).
    sentry-js) STOCKADE_SENTRY_FAST=0 "${pin[@]}" "$stockade" --root "$work/root" do --isolation sentry --user 0 --bind "$work/prog" --cwd "$work/prog" -- \
              "$work/prog/syscalls" cpu "$op" "$n" >"$log" 2>&1 & ;;
    c-supervisor) "${pin[@]}" "$work/c-supervisor" "$work/prog/syscalls" cpu "$op" "$n" >"$log" 2>&1 & ;;
    c-supervisor-cg) "${pin[@]}" "$work/c-supervisor" "${cg_args[@]}" "$work/prog/syscalls" cpu "$op" "$n" >"$log" 2>&1 & ;;
    # Supervisor and workload together in a CPU cgroup of their own: where the sentry and its
    # container's workload are since the sentry joined the container's cgroup.
    c-supervisor-owncg) "${pin[@]}" "${own_cg[@]}" "$work/c-supervisor" "$work/prog/syscalls" cpu "$op" "$n" >"$log" 2>&1 & ;;
    node-noop|node-stat) "${pin[@]}" "${own_cg[@]}" "$work/c-supervisor" --serve-with node bench/node-supervisor.js "${name#node-}" -- "$work/prog/syscalls" cpu "$op" "$n" >"$log" 2>&1 & ;;
  esac
  pid=$!
  sup='' wl=''
  for _ in $(seq 100); do
    if [ "${name%-apart}" = sentry ] || [ "$name" = sentry-js ]; then sup=$(pgrep -f "stockade-sentryd.*$work/root" | head -1 || true); else sup=$pid; fi
    wl=$(pgrep -x syscalls -n || true)
    [ -n "$sup" ] && [ -n "$wl" ] && break
    sleep 0.02
  done
  if [ -z "$sup" ] || [ -z "$wl" ]; then echo "$name: no supervisor or workload found" >&2; wait "$pid" || true; return; fi
  # sentry-apart: the sentry moved back out of its container's cgroups into this script's, where it
  # ran before it joined them (its workload stays in the container's).
  if [ "$name" = sentry-apart ]; then
    while IFS=: read -r _ ctl path; do
      case ",$ctl," in
        *,cpu,*|*,cpuacct,*|*,cpuset,*|*,memory,*) echo "$sup" >"/sys/fs/cgroup/${ctl#name=}$path/cgroup.procs" ;;
        ,,) [ -f /sys/fs/cgroup/cgroup.controllers ] && echo "$sup" >"/sys/fs/cgroup$path/cgroup.procs" ;;
      esac
    done </proc/self/cgroup
  fi
  sleep 0.7
  local a w1 v1 i1 la
  if ! { read -r a w1 _ <"/proc/$sup/schedstat" && read -r la _ <"/proc/$wl/schedstat"; } 2>/dev/null; then
    echo "$name: supervisor $sup or workload $wl gone before the calls; run dropped" >&2
    wait "$pid" || true
    return
  fi
  v1=$(awk '/^voluntary_ctxt/ {print $2}' "/proc/$sup/status"); i1=$(awk '/^nonvoluntary_ctxt/ {print $2}' "/proc/$sup/status")
  until grep -q '^done' "$log"; do
    kill -0 "$pid" 2>/dev/null || { echo "$name: failed: $(tail -2 "$log")" >&2; return; }
    sleep 0.05
  done
  local b w2 v2 i2 lb
  # The workload pauses 1.5 s after its calls; on one loaded CPU this loop can take longer to see
  # "done", and then the processes are gone: that run is dropped, not the whole bench.
  if ! { read -r b w2 _ <"/proc/$sup/schedstat" && read -r lb _ <"/proc/$wl/schedstat"; } 2>/dev/null; then
    echo "$name: ended before it was read; run dropped" >&2
    wait "$pid" || true
    return
  fi
  v2=$(awk '/^voluntary_ctxt/ {print $2}' "/proc/$sup/status"); i2=$(awk '/^nonvoluntary_ctxt/ {print $2}' "/proc/$sup/status")
  wait "$pid" || true
  local wall
  wall=$(awk '/^done/ {print $2}' "$log")
  node -e 'const [n, wall, a, b, w1, w2, v1, v2, i1, i2, la, lb] = process.argv.slice(1).map(Number);
    console.log(JSON.stringify({ wall, supervisor: (b - a) / 1000 / n, workload: (lb - la) / 1000 / n, rqwait: (w2 - w1) / 1000 / n, vol: (v2 - v1) / n, invol: (i2 - i1) / n }));' \
    "$n" "$wall" "$a" "$b" "$w1" "$w2" "$v1" "$v2" "$i1" "$i2" "$la" "$lb" >>"$out/$name.jsonl"
}

echo "$op: $rounds round(s) of ${names[*]}, $n calls each${pin:+, on CPU $SUPERVISOR_CPU_PIN}" >&2
for ((r = 0; r < rounds; r++)); do
  for name in "${names[@]}"; do run "$name"; done
done

node - "$out" "$op" "${names[@]}" <<'EOF'
const fs = require('fs');
const [dir, op, ...names] = process.argv.slice(2);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const k = s.length; return k === 0 ? NaN : k % 2 ? s[(k - 1) / 2] : (s[k / 2 - 1] + s[k / 2]) / 2; };
const col = {};
for (const name of names) {
  const f = `${dir}/${name}.jsonl`;
  const rows = fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
  if (rows.length === 0) { console.log(`${name}: no result`); continue; }
  col[name] = Object.fromEntries(['wall', 'supervisor', 'workload', 'rqwait', 'vol', 'invol'].map((k) => [k, median(rows.map((r) => r[k]))]));
  col[name].runs = rows.map((r) => r.supervisor.toFixed(1)).join(' ');
}
console.log(`${op}, per call (medians)  wall us  supervisor CPU us  workload CPU us  supervisor run-queue wait us  sleeps  preemptions   (supervisor CPU per run)`);
for (const [name, c] of Object.entries(col)) {
  console.log(`${name.padEnd(22)} ${c.wall.toFixed(1).padStart(8)} ${c.supervisor.toFixed(2).padStart(18)} ${c.workload.toFixed(2).padStart(16)} ${c.rqwait.toFixed(1).padStart(29)} ${c.vol.toFixed(2).padStart(7)} ${c.invol.toFixed(2).padStart(12)}   (${c.runs})`);
}
for (const who of ['sentry', 'sentry-js']) {
  for (const base of ['c-supervisor', 'c-supervisor-cg', 'c-supervisor-owncg', 'node-noop', 'node-stat']) {
    const s = col[who], c = col[base];
    if (s && c) console.log(`${who} / ${base}: supervisor CPU ${(s.supervisor / c.supervisor).toFixed(2)}x, wall ${(s.wall / c.wall).toFixed(2)}x${base.startsWith('c-') && who === 'sentry' ? " (issue 15's goal: <= 1.3x)" : ''}`);
  }
}
// The Node boundary alone: the same calls from Node, and no work at all, against C.
for (const node of ['node-noop', 'node-stat']) {
  const s = col[node], c = col['c-supervisor'];
  if (s && c) console.log(`${node} / c-supervisor: supervisor CPU ${(s.supervisor / c.supervisor).toFixed(2)}x, wall ${(s.wall / c.wall).toFixed(2)}x`);
}
EOF
