#!/usr/bin/env bash
# The planner's memory (issue 16's goal: at most 40 MB PSS while resident, nothing once idle past
# its minute): PSS and RSS of the root's planner after its first call (a run -d) and after CALLS
# execs, then, after waiting out the idle time, whether any planner process, socket or member
# of its cgroup is left. Beside it, for scale: a cold call's Node (`stockade list` held open by a
# slow --log FIFO reader is not possible, so an idle `node -e` is measured instead).
# Usage: sudo bash bench/planner-memory.sh [CALLS] [IDLE_MS]   (default 20 calls; the planner's own minute)
set -euo pipefail
cd "$(dirname "$0")/.."
calls="${1:-20}"
idle_ms="${2:-}"
unset NODE_EXTRA_CA_CERTS
stockade="$PWD/bin/stockade"
work=$(mktemp -d /tmp/stockade-planner-mem.XXXXXX)
mkdir -p "$work/bundle/rootfs/bin" "$work/state"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for a in true sleep; do ln -s busybox "$work/bundle/rootfs/bin/$a"; done
runc spec --bundle "$work/bundle"
node -e '
const fs = require("fs"); const p = process.argv[1]; const c = JSON.parse(fs.readFileSync(p));
c.process.terminal = false; c.process.args = ["/bin/sleep", "1000"]; fs.writeFileSync(p, JSON.stringify(c));
' "$work/bundle/config.json"
planner_pids() { for p in $(pgrep -f stockade-planner.js); do tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "STOCKADE_PLANNER_SERVE=$work/state" && echo "$p"; done; return 0; }
cleanup() {
  "$stockade" --root "$work/state" delete --force mem-c >/dev/null 2>&1 || true
  for p in $(planner_pids); do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
s() { env STOCKADE_PLANNER=on ${idle_ms:+STOCKADE_PLANNER_IDLE_MS=$idle_ms} "$stockade" --root "$work/state" "$@"; }
kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/smaps_rollup"; }
mb() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1024 }'; }

# The root exists: its first call starts the planner (a root that does not exist yet goes cold).
s run -d -b "$work/bundle" mem-c >/dev/null
pid=$(planner_pids | head -1)
[ -n "$pid" ] || { echo "no planner started for $work/state" >&2; exit 1; }
first_pss=$(kb "$pid" Pss); first_rss=$(kb "$pid" Rss)
max_pss=$first_pss
for ((i = 0; i < calls; i++)); do
  s exec mem-c /bin/true
  p=$(kb "$pid" Pss); [ "$p" -gt "$max_pss" ] && max_pss=$p
done
last_pss=$(kb "$pid" Pss); last_rss=$(kb "$pid" Rss)
[ "$last_pss" -gt "$max_pss" ] && max_pss=$last_pss
s delete --force mem-c
node -e 'setTimeout(() => {}, 3000)' & idle_node=$!
sleep 2
node_pss=$(kb "$idle_node" Pss)
wait "$idle_node"
cg=$(awk -F: '$1 == "0" || $2 ~ /memory/ { print $3 }' "/proc/$pid/cgroup" | head -1)

echo "planner pid $pid, cgroup $cg"
echo "PSS after its first call:      $(mb "$first_pss") MB (RSS $(mb "$first_rss") MB)"
echo "PSS after $calls execs:         $(mb "$last_pss") MB (RSS $(mb "$last_rss") MB); highest seen $(mb "$max_pss") MB"
echo "for scale, an idle node -e:    $(mb "$node_pss") MB PSS"
goal=$(awk -v p="$max_pss" 'BEGIN { print (p <= 40 * 1024) ? "met" : "not met" }')
echo "issue 16 goal, at most 40 MB PSS while resident: $goal ($(mb "$max_pss") MB)"
# PSS shares Node's own pages with every other Node process on the host: fewer of them, higher PSS (RSS is the bound).

# Idle past its minute (or IDLE_MS): nothing of it is left.
wait_s=$(( ${idle_ms:-60000} / 1000 + 4 ))
echo "waiting ${wait_s} s for it to idle out..."
sleep "$wait_s"
left=()
kill -0 "$pid" 2>/dev/null && left+=("process $pid")
[ -e "$work/state/.planner.sock" ] && left+=("socket $work/state/.planner.sock")
for d in /sys/fs/cgroup/stockade-planner /sys/fs/cgroup/*/stockade-planner; do
  [ -f "$d/cgroup.procs" ] && grep -qx "$pid" "$d/cgroup.procs" && left+=("$d holds it")
done
if [ ${#left[@]} -eq 0 ]; then echo "after idling out: nothing left (process, socket, cgroup member): goal met"
else echo "after idling out, left: ${left[*]}: goal not met"; fi
