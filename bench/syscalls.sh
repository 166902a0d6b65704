#!/usr/bin/env bash
# System call costs inside a container: bench/syscalls.c (getppid, open+close, stat, 1-byte read and
# write on held fds, fork+exec+wait) on the host, under stockade (namespaces: `run` of a bundle and
# `do`), runc, runsc, stockade's sentry (`stockade do --isolation sentry`) and bench/c-supervisor.c
# (a bare C seccomp supervisor serving the same calls the same way: the floor the sentry is
# measured against). Prints ns per call, the ratios and the goals of issue 5 that can be measured.
# Also: each supervisor again on one CPU (taskset -c 0), and bench/switch.c, the floor of this
# machine for any supervisor (a round trip between two tasks, on one CPU and across two).
# Usage: sudo bash bench/syscalls.sh [RUNS]   (root: it creates containers; RUNS runs of the
#   program per runtime, interleaved, median taken; default 3)
#   SYSCALLS_MS (default 100): the program times each call in 5 rounds of at least this many ms,
#   the iteration count adapting to the call's cost (see bench/syscalls.c).
#   SYSCALLS_ONLY (default: all): the columns to run, by name (e.g. "sentry c-supervisor").
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
round_ms="${SYSCALLS_MS:-100}"
# Clients do not set it; in this sandbox it costs every Node start 70 ms (bin/stockade drops it too).
unset NODE_EXTRA_CA_CERTS
stockade="$PWD/bin/stockade"
for tool in gcc runc node; do command -v "$tool" >/dev/null || { echo "bench/syscalls.sh: $tool is not installed" >&2; exit 1; }; done

work=$(mktemp -d /tmp/stockade-syscalls.XXXXXX)
csup_cgroups=()
# Containers of this script are named sc-<runtime>-<n>; each runtime has its own --root below $work.
cleanup() {
  set +e
  for root in "$work"/root-*; do
    [ -d "$root" ] || continue
    rt=${root##*/root-}
    case "$rt" in
      stockade|do) bin=$stockade ;;
      *) bin=$rt ;;
    esac
    q=-q; [ "$rt" = runsc ] && q=--quiet
    for id in $("$bin" --root "$root" list $q 2>/dev/null); do "$bin" --root "$root" delete --force "$id" >/dev/null 2>&1; done
  done
  # Anything still mounted below the work directory (nothing, after a clean run), deepest first.
  awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  for d in "${csup_cgroups[@]}"; do rmdir "$d" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/prog"
gcc -static -O2 -Wall -o "$work/prog/syscalls" bench/syscalls.c
gcc -O2 -Wall -o "$work/c-supervisor" bench/c-supervisor.c
gcc -O2 -Wall -pthread -o "$work/switch" bench/switch.c
bundle="$work/bundle"
mkdir -p "$bundle/rootfs"/{bin,dev,proc,sys,tmp,etc,run}
cp /bin/busybox "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/sh"
cp "$work/prog/syscalls" "$bundle/rootfs/bin/syscalls"
# One config for every runtime: what `stockade spec` writes (Docker's default seccomp profile,
# Docker's capabilities, masked and read-only paths), running the program without a terminal.
"$stockade" spec --bundle "$bundle"
node -e '
const fs = require("fs"); const p = process.argv[1]; const c = JSON.parse(fs.readFileSync(p));
c.process.terminal = false; c.process.args = ["/bin/syscalls", process.argv[2]];
fs.writeFileSync(p, JSON.stringify(c, null, 2));
' "$bundle/config.json" "$round_ms"

# The columns, in order, and how each runs the program. `stockade do` makes the host's root the
# container's, read-only, with a fresh /tmp: --bind shares $work/prog (below /tmp) back, so the
# program runs from the same host path and opens and stats itself there (/proc/self/exe). It runs
# as root (--user 0), as the C supervisor's program does: neither then switches identity per call.
# Every `do` container lives under $work/root-do, so the cleanup finds one left by an interrupted run.
names=(host stockade-namespaces stockade-do runc)
declare -A cmd
cmd[host]="$work/prog/syscalls $round_ms"
cmd[stockade-namespaces]="$stockade --root $work/root-stockade run --bundle $bundle sc-stockade-RUN"
inside="--user 0 --bind $work/prog --cwd $work/prog -- $work/prog/syscalls"
cmd[stockade-do]="$stockade --root $work/root-do do $inside $round_ms"
cmd[runc]="runc --root $work/root-runc run --bundle $bundle sc-runc-RUN"
if command -v runsc >/dev/null; then
  names+=(runsc)
  cmd[runsc]="runsc --root $work/root-runsc --network=none run --bundle $bundle sc-runsc-RUN"
else
  echo "runsc: not installed"
fi
# shellcheck disable=SC2086 # $inside: plain words
if ! why=$("$stockade" --root "$work/root-do" do --isolation sentry $inside noop 2>&1 >/dev/null); then
  echo "sentry: not available (stockade do --isolation sentry: ${why:-failed})"
else
  names+=(sentry)
  cmd[sentry]="$stockade --root $work/root-do do --isolation sentry $inside $round_ms"
fi
names+=(c-supervisor)
cmd[c-supervisor]="$work/c-supervisor $work/prog/syscalls $round_ms"
# The C supervisor again with its workload in a CPU cgroup of its own, as a container's workload is
# (stockade puts the container in a cgroup below the root and leaves its sentry where it was
# started): a wake-up between two tasks of different cgroups goes through the scheduler's group
# entities, and on a loaded machine that alone can cost more than the supervisor's work.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  csup_cgroups=("/sys/fs/cgroup/stockade-bench-csup-$$")
else
  for c in cpu cpuacct; do
    [ -d "/sys/fs/cgroup/$c" ] && csup_cgroups+=("$(readlink -f "/sys/fs/cgroup/$c")/stockade-bench-csup-$$")
  done
fi
cg_args=""
for d in "${csup_cgroups[@]}"; do
  # cpu and cpuacct may be one hierarchy mounted twice: one directory, joined once.
  case " $cg_args " in *" $d/cgroup.procs "*) continue ;; esac
  mkdir -p "$d" && cg_args="$cg_args --cgroup $d/cgroup.procs"
done
if [ -n "$cg_args" ]; then
  names+=(c-supervisor-cg)
  cmd[c-supervisor-cg]="$work/c-supervisor$cg_args $work/prog/syscalls $round_ms"
fi
# The same supervisors with everything on one CPU (taskset: the container, its sentry or gVisor's):
# a mediated call wakes the supervisor and then the caller, and on a VM a wake-up that crosses to
# an idle CPU can cost more than the rest of the call (bench/switch.c measures both).
if command -v taskset >/dev/null; then
  for name in sentry c-supervisor c-supervisor-cg runsc; do
    [ -n "${cmd[$name]:-}" ] || continue
    names+=("$name-1cpu")
    cmd[$name-1cpu]="taskset -c 0 ${cmd[$name]//sc-runsc-RUN/sc-runsc1-RUN}"
  done
fi

# SYSCALLS_ONLY="sentry c-supervisor": only those columns (and their one-CPU runs), for a quicker A/B.
if [ -n "${SYSCALLS_ONLY:-}" ]; then
  kept=()
  for name in "${names[@]}"; do
    for want in $SYSCALLS_ONLY; do case "$name" in "$want" | "$want-1cpu" | "$want-cg" | "$want-cg-1cpu") kept+=("$name") ;; esac; done
  done
  names=("${kept[@]}")
fi

mkdir -p "$work/out"
echo "running ${names[*]}: $runs run(s) each, interleaved; 5 rounds of >= $round_ms ms per call and run" >&2
for ((i = 1; i <= runs; i++)); do
  for name in "${names[@]}"; do
    c=${cmd[$name]//RUN/$i}
    # shellcheck disable=SC2086 # the command lines above are plain words
    if ! $c >"$work/out/$name.$i" 2>"$work/out/$name.$i.err" </dev/null; then
      echo "$name: run $i failed: $(tail -3 "$work/out/$name.$i.err" | tr '\n' ' ')" >&2
      : >"$work/out/$name.$i"
    fi
    cat "$work/out/$name.$i" >>"$work/out/$name.jsonl"
  done
done

# The machine's floor for any supervisor: a round trip between two tasks (median of three).
for i in 1 2 3; do "$work/switch"; done >"$work/out/switch.jsonl"

platform=$(runsc flags 2>&1 | grep -A1 -- '-platform string' | grep -o '(default "[a-z]*")' | tr -dc 'a-z' | sed 's/^default//' || true)
echo "ns per call: median over $runs run(s) of each run's median round${platform:+; runsc on its default platform, $platform}"
node - "$work/out" "${names[@]}" <<'EOF'
const fs = require('fs');
const [dir, ...names] = process.argv.slice(2);
const ops = ['getppid', 'open+close', 'stat', 'read 1B', 'write 1B', 'fork+exec+wait'];
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n === 0 ? undefined : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const col = {};
for (const name of names) {
  const rows = fs.readFileSync(`${dir}/${name}.jsonl`, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  if (rows.length === 0) { console.log(`${name}: no result (every run failed)`); continue; }
  col[name] = Object.fromEntries(ops.map((op) => [op, median(rows.map((r) => r[op]))]));
}
const present = names.filter((n) => col[n]);
const ratios = [['stockade-namespaces', 'runc'], ['stockade-do', 'runc'], ['sentry', 'runc'], ['sentry', 'stockade-do'], ['runsc', 'sentry'], ['sentry', 'c-supervisor'],
  ['runsc-1cpu', 'sentry-1cpu'], ['sentry-1cpu', 'c-supervisor-1cpu'], ['sentry', 'c-supervisor-cg'], ['sentry-1cpu', 'c-supervisor-cg-1cpu']]
  .filter(([a, b]) => col[a] && col[b]);
const fmt = (v) => (v === undefined ? '-' : v >= 100000 ? v.toFixed(0) : v.toFixed(1));
const ratio = (r) => `${r >= 0.995 ? r.toFixed(2) : r.toPrecision(2)}x`;
const head = ['ns per call', ...present, ...ratios.map(([a, b]) => `${a.replace('-namespaces', '')}/${b}`)];
const rows = ops.map((op) => [op, ...present.map((n) => fmt(col[n][op])), ...ratios.map(([a, b]) => ratio(col[a][op] / col[b][op]))]);
const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
console.log(`\n${line(head)}\n${w.map((n) => '-'.repeat(n)).join('  ')}`);
for (const r of rows) console.log(line(r));

const switches = fs.readFileSync(`${dir}/switch.jsonl`, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
if (switches.length > 0) {
  console.log('\nthis machine\'s floor for any supervisor, a round trip between two tasks over pipes (bench/switch.c, median of 3):');
  for (const k of Object.keys(switches[0])) console.log(`  ${k.padEnd(18)} ${(median(switches.map((r) => r[k])) / 1000).toFixed(2)} us`);
}

console.log('\nissue 5 goals (sentry):');
const s = col['sentry'], runc = col['runc'], runsc = col['runsc'], c = col['c-supervisor'];
const x = (r) => `${r.toFixed(2)}x`;
if (!s) {
  console.log('  not measurable: no sentry result');
} else {
  for (const op of ['getppid', 'read 1B']) {
    if (!runc) { console.log(`  ${op}: sentry/runc <= 1.2x: not measurable (no runc result)`); continue; }
    const r = s[op] / runc[op];
    console.log(`  ${op}: sentry/runc <= 1.2x: ${r <= 1.2 ? 'met' : 'not met'} (${x(r)}: ${fmt(s[op])} vs ${fmt(runc[op])} ns)`);
  }
  for (const op of ['open+close', 'stat']) {
    const us = s[op] / 1000;
    // The floor of this machine: a supervisor in C serving the same call the same way.
    const floor = c && c[op] / 1000 > 10 ? `; the bare C supervisor takes ${(c[op] / 1000).toFixed(2)} us here, above the goal itself` : '';
    console.log(`  ${op}: sentry <= 10 us: ${us <= 10 ? 'met' : 'not met'} (${us.toFixed(2)} us${floor})`);
  }
  for (const op of ['open+close', 'stat']) {
    if (!runsc) { console.log(`  ${op}: runsc/sentry >= 6x: not measurable (no runsc result)`); continue; }
    const r = runsc[op] / s[op];
    console.log(`  ${op}: runsc/sentry >= 6x: ${r >= 6 ? 'met' : 'not met'} (${x(r)}: runsc ${(runsc[op] / 1000).toFixed(2)} us)`);
  }
  // Issue 15's goal: a mediated stat or open at most 1.3x the bare C supervisor's, on two CPUs and on one.
  const vs = (sc, cc, where) => {
    if (!sc || !cc) return;
    for (const op of ['open+close', 'stat']) {
      const r = sc[op] / cc[op];
      console.log(`  ${op}${where}: sentry ${(sc[op] / 1000).toFixed(2)} us, c-supervisor ${(cc[op] / 1000).toFixed(2)} us: ${x(r)} (<= 1.3x: ${r <= 1.3 ? 'met' : 'not met'}), ${((sc[op] - cc[op]) / 1000).toFixed(2)} us more per call`);
    }
  };
  if (c || col['c-supervisor-cg']) console.log('the sentry against a bare C supervisor serving the same calls the same way (bench/c-supervisor.c):');
  vs(s, c, '');
  vs(col['sentry-1cpu'], col['c-supervisor-1cpu'], ' on one CPU');
  vs(s, col['c-supervisor-cg'], ', its workload in a cgroup of its own');
  vs(col['sentry-1cpu'], col['c-supervisor-cg-1cpu'], ', its workload in a cgroup of its own, on one CPU');
  const s1 = col['sentry-1cpu'], g1 = col['runsc-1cpu'];
  if (s1 && g1) {
    for (const op of ['open+close', 'stat']) console.log(`  ${op} on one CPU: runsc ${(g1[op] / 1000).toFixed(2)} us, runsc/sentry ${x(g1[op] / s1[op])}`);
  }
}
EOF
