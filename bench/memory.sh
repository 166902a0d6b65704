#!/usr/bin/env bash
# Memory per idle sandbox, side by side: N sandboxes each running `sleep 1000` under stockade's sentry
# (`stockade do --isolation sentry`, its sentry a thread of the `do` process; `stockade run -d
# --isolation sentry`, as Docker and containerd start one: its sentry a process of its own; and a
# Kubernetes pod of two such containers sharing one sentry), stockade's namespaces (`stockade do` and `stockade run -d` of a
# busybox bundle), runc (`runc run -d`) and runsc (`runsc run -detach`, and `runsc run` left in the
# foreground, its monitor counted like the `stockade do` process). Each runtime in turn: start N,
# let them settle, sum PSS and RSS (/proc/PID/smaps_rollup) over every process that belongs to each
# sandbox, the runtime's own long-lived ones included, then stop them before the next runtime, so
# that PSS splits shared pages among sandboxes of one kind only. Prints MB per sandbox, which
# processes were counted, and the issue 5 goal: the sentry no more than runsc.
# Usage: sudo bash bench/memory.sh [N]   (root: it creates containers; N sandboxes per runtime, default 3)
#   MEMORY_SETTLE (default 3): seconds to wait after the last start before measuring.
# anon: memory of the processes' own (Anonymous in smaps), which no other process shares and only
# swap could take back; PSS adds their share of mapped files (binaries, libraries), whose pages
# the page cache holds once for the whole host.
# Not counted by any column: kernel memory (page tables, slab, the sockets and pipes between processes).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-3}"
settle="${MEMORY_SETTLE:-3}"
# Clients do not set it; it costs every Node start 70 ms and a few MB of parsed certificates.
unset NODE_EXTRA_CA_CERTS
stockade="$PWD/bin/stockade"
for tool in runc node busybox; do command -v "$tool" >/dev/null || { echo "bench/memory.sh: $tool is not installed" >&2; exit 1; }; done

work=$(mktemp -d /tmp/stockade-memory.XXXXXX)
# Background starters (`stockade do`, foreground `runsc run`), killed if still there at exit.
bg_pids=()
# Every container of this script lives under a --root below $work: the cleanup deletes them all.
cleanup() {
  set +e
  for root in "$work"/root-*; do
    [ -d "$root" ] || continue
    case "${root##*/root-}" in
      stockade*|do*) bin=$stockade; q=-q ;;
      runc*) bin=runc; q=-q ;;
      runsc*) bin=runsc; q=--quiet ;;
    esac
    for id in $("$bin" --root "$root" list $q 2>/dev/null); do "$bin" --root "$root" delete --force "$id" >/dev/null 2>&1; done
  done
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null; done
  awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT

bundle="$work/bundle"
mkdir -p "$bundle/rootfs/bin"
cp "$(command -v busybox)" "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/sleep"
# runc's default config (read-only root, its own namespaces), running sleep without a terminal.
runc spec --bundle "$bundle"
node -e '
const fs = require("fs"); const p = process.argv[1]; const c = JSON.parse(fs.readFileSync(p));
c.process.terminal = false; c.process.args = ["/bin/sleep", "1000"]; fs.writeFileSync(p, JSON.stringify(c));
' "$bundle/config.json"

# The given pids and all their descendants.
tree() {
  ps -e -o pid=,ppid= | awk -v roots="$*" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
    { par[$1] = $2; all[NR] = $1 }
    END {
      do { grew = 0; for (i in all) { p = all[i]; if (!(p in keep) && (par[p] in keep)) { keep[p] = 1; grew = 1 } } } while (grew)
      for (p in keep) print p
    }'
}

# The pid a runtime's `state` reports.
state_pid() {
  "$@" | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).pid))'
}

# The detached sentry of stockade container $2 under --root $1: its configuration, on its command
# line, names the container's join socket. Fails when there is none, so that a sandbox whose
# sentry was not found is reported, not counted without it.
sentry_pid() {
  local p
  p=$(pgrep -f -- "stockade-sentryd[a-z-]*\.js .*\"$1/$2/sentry.sock\"") || { echo "no sentry process for $2" >&2; return 1; }
  echo "$p"
}

# The watch create leaves beside sentry container $1 (stockade-light sentry-watch, which kills the
# container if its sentry dies): a process of the sandbox like the others, though no descendant of them.
watch_pid() {
  pgrep -f -- "stockade-light sentry-watch $1 " || { echo "no sentry watch for $1" >&2; return 1; }
}

# The processes of runsc's sandbox with this --root: runsc-sandbox and runsc-gofer carry it on their command line.
runsc_pids() {
  pgrep -f -- "--root=$1 " || true
}

declare -A roots      # kind.i -> the pids whose trees make up sandbox i
start() {             # start KIND I: starts sandbox I of KIND and records its root pids
  local kind=$1 i=$2 p
  case "$kind" in
    sentry|stockade-do)
      local iso=(); [ "$kind" = sentry ] && iso=(--isolation sentry)
      "$stockade" --root "$work/root-do" do "${iso[@]}" -- /bin/sleep 1000 </dev/null >/dev/null 2>"$work/$kind.$i.err" &
      p=$!; bg_pids+=("$p"); roots[$kind.$i]=$p ;;
    sentry-pod)
      # A pod of two containers as Kubernetes makes one (CRI annotations): the sandbox and one
      # container, which joins the sandbox's sentry. Counted: both inits, the one sentry, both watches.
      local pod="$work/pod-$i" c
      for c in sb app; do
        mkdir -p "$pod/$c"
        node -e '
const fs = require("fs"); const [src, dst, c, sb] = process.argv.slice(1); const s = JSON.parse(fs.readFileSync(src));
s.root.path = require("path").resolve(require("path").dirname(src), s.root.path);
s.annotations = { "io.kubernetes.cri.container-type": c === "sb" ? "sandbox" : "container", "io.kubernetes.cri.sandbox-id": sb };
fs.writeFileSync(dst, JSON.stringify(s));
' "$bundle/config.json" "$pod/$c/config.json" "$c" "mem-sp-$i"
      done
      "$stockade" --root "$work/root-sentry" --isolation sentry run -d --bundle "$pod/sb" "mem-sp-$i" </dev/null >/dev/null 2>"$work/$kind.$i.err"
      "$stockade" --root "$work/root-sentry" --isolation sentry run -d --bundle "$pod/app" "mem-spa-$i" </dev/null >/dev/null 2>>"$work/$kind.$i.err"
      roots[$kind.$i]="$(state_pid "$stockade" --root "$work/root-sentry" state "mem-sp-$i") $(state_pid "$stockade" --root "$work/root-sentry" state "mem-spa-$i") $(sentry_pid "$work/root-sentry" "mem-sp-$i") $(watch_pid "mem-sp-$i") $(watch_pid "mem-spa-$i")" ;;
    stockade-run)
      "$stockade" --root "$work/root-stockade" run -d --bundle "$bundle" "mem-s-$i" </dev/null >/dev/null 2>"$work/$kind.$i.err"
      roots[$kind.$i]=$(state_pid "$stockade" --root "$work/root-stockade" state "mem-s-$i") ;;
    sentry-run)
      # The container's init, its detached sentry (a process of its own) and the sentry's watch.
      "$stockade" --root "$work/root-sentry" --isolation sentry run -d --bundle "$bundle" "mem-ss-$i" </dev/null >/dev/null 2>"$work/$kind.$i.err"
      p=$(state_pid "$stockade" --root "$work/root-sentry" state "mem-ss-$i")
      roots[$kind.$i]="$p $(sentry_pid "$work/root-sentry" "mem-ss-$i") $(watch_pid "mem-ss-$i")" ;;
    runc)
      runc --root "$work/root-runc" run -d --bundle "$bundle" "mem-r-$i" </dev/null >/dev/null 2>"$work/$kind.$i.err"
      roots[$kind.$i]=$(state_pid runc --root "$work/root-runc" state "mem-r-$i") ;;
    runsc)
      runsc --root "$work/root-runsc-$i" --network=none run -detach --bundle "$bundle" "mem-g-$i" </dev/null >/dev/null 2>"$work/$kind.$i.err"
      roots[$kind.$i]=RUNSC:$work/root-runsc-$i ;;
    runsc-run)
      runsc --root "$work/root-runscfg-$i" --network=none run --bundle "$bundle" "mem-f-$i" </dev/null >/dev/null 2>"$work/$kind.$i.err" &
      p=$!; bg_pids+=("$p"); roots[$kind.$i]="$p RUNSC:$work/root-runscfg-$i" ;;
  esac
}

pids_of() {           # pids_of KIND I: every process of sandbox I of KIND
  local r out=()
  for r in ${roots[$1.$2]}; do
    case "$r" in
      RUNSC:*) mapfile -t -O "${#out[@]}" out < <(runsc_pids "${r#RUNSC:}") ;;
      *) out+=("$r") ;;
    esac
  done
  [ "${#out[@]}" -gt 0 ] && tree "${out[@]}"
}

stop() {              # stop KIND: deletes every sandbox of KIND and waits for its starters
  local root id
  for root in "$work"/root-*; do
    [ -d "$root" ] || continue
    case "$1:${root##*/root-}" in
      sentry:do|stockade-do:do|stockade-run:stockade|sentry-run:sentry|sentry-pod:sentry) bin=$stockade; q=-q ;;
      runc:runc) bin=runc; q=-q ;;
      runsc:runsc-[0-9]*|runsc-run:runscfg-*) bin=runsc; q=--quiet ;;
      *) continue ;;
    esac
    for id in $("$bin" --root "$root" list $q 2>/dev/null); do "$bin" --root "$root" delete --force "$id" >/dev/null 2>&1 || true; done
  done
  for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bg_pids=()
}

kinds=(sentry sentry-run sentry-pod stockade-do stockade-run runc)
if command -v runsc >/dev/null; then kinds+=(runsc runsc-run); else echo "runsc: not installed"; fi
: >"$work/result"
for kind in "${kinds[@]}"; do
  echo "$kind: starting $n sandbox(es)" >&2
  for ((i = 1; i <= n; i++)); do
    if ! start "$kind" "$i"; then echo "$kind: sandbox $i failed to start: $(tail -3 "$work/$kind.$i.err" | tr '\n' ' ')" >&2; fi
  done
  sleep "$settle"
  for ((i = 1; i <= n; i++)); do
    pids=$(pids_of "$kind" "$i" || true)
    if [ -z "$pids" ] || ! ps -o args= -p "$(echo $pids | tr ' ' ',')" | grep -qE 'sleep|runsc-sandbox'; then
      echo "$kind: sandbox $i is not running sleep: $(tail -3 "$work/$kind.$i.err" 2>/dev/null | tr '\n' ' ')" >&2
      continue
    fi
    if [[ $kind == sentry-* ]] && ! ps -o args= -p "$(echo $pids | tr ' ' ',')" | grep -q stockade-sentryd; then
      echo "$kind: sandbox $i: its sentry process was not found, so it is not counted" >&2
      continue
    fi
    pss=0 rss=0 anon=0 procs=()
    for p in $pids; do
      [ -r "/proc/$p/smaps_rollup" ] || continue
      read -r r s a < <(awk '/^Rss:/ { r = $2 } /^Pss:/ { s = $2 } /^Anonymous:/ { a = $2 } END { print r + 0, s + 0, a + 0 }' "/proc/$p/smaps_rollup")
      rss=$((rss + r)); pss=$((pss + s)); anon=$((anon + a))
      a=$(ps -o args= -p "$p" | awk '{ print $1 }'); procs+=("${a##*/}:$((s / 1024))")
    done
    echo "$kind $i $pss $rss $anon ${procs[*]}" >>"$work/result"
  done
  stop "$kind"
done

node - "$work/result" "$n" <<'EOF'
const fs = require('fs');
const [file, n] = process.argv.slice(2);
const rows = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => {
  const [kind, i, pss, rss, anon, ...procs] = l.split(' ');
  return { kind, i: Number(i), pss: Number(pss) / 1024, rss: Number(rss) / 1024, anon: Number(anon) / 1024, procs };
});
const kinds = [...new Set(rows.map((r) => r.kind))];
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const by = {};
console.log(`\nmemory per idle sandbox (sleep 1000), ${n} sandboxes of one runtime at a time, mean over them:`);
console.log(`${'runtime'.padEnd(14)}  ${'PSS MB'.padStart(7)}  ${'RSS MB'.padStart(7)}  ${'anon MB'.padStart(7)}  processes counted in sandbox 1 (args[0]:PSS MB)`);
for (const k of kinds) {
  const rs = rows.filter((r) => r.kind === k);
  by[k] = { pss: mean(rs.map((r) => r.pss)), rss: mean(rs.map((r) => r.rss)), anon: mean(rs.map((r) => r.anon)), n: rs.length };
  console.log(`${k.padEnd(14)}  ${by[k].pss.toFixed(1).padStart(7)}  ${by[k].rss.toFixed(1).padStart(7)}  ${by[k].anon.toFixed(1).padStart(7)}  ${rs[0].procs.join(' ')}${rs.length < Number(n) ? ` (only ${rs.length} ran)` : ''}`);
}
console.log('\nissue 5 goal: memory per idle sandbox, sentry included, no more than runsc\'s (detached to detached, foreground to foreground):');
for (const [mine, peer] of [['sentry-run', 'runsc'], ['sentry', 'runsc-run']]) {
  const s = by[mine];
  if (!s || !by[peer]) { console.log(`  ${mine}/${peer}: not measurable`); continue; }
  const r = s.pss / by[peer].pss;
  console.log(`  ${mine}/${peer} (PSS): ${r <= 1 ? 'met' : 'not met'} (${r.toFixed(2)}x: ${s.pss.toFixed(1)} vs ${by[peer].pss.toFixed(1)} MB; RSS ${(s.rss / by[peer].rss).toFixed(2)}x; anonymous ${(s.anon / by[peer].anon).toFixed(2)}x: ${s.anon.toFixed(1)} vs ${by[peer].anon.toFixed(1)} MB)`);
}
if (by['sentry-pod'] && by['sentry-run']) {
  console.log(`  a pod of two containers (sentry-pod) costs ${by['sentry-pod'].pss.toFixed(1)} MB: one sentry for both (${(by['sentry-pod'].pss - by['sentry-run'].pss).toFixed(1)} MB more than one container alone); runsc pods are not measured here`);
}
const s = by['sentry'];
if (s && by['stockade-do']) console.log(`  what the sentry adds to stockade do: ${(s.pss - by['stockade-do'].pss).toFixed(1)} MB PSS per sandbox`);
EOF
