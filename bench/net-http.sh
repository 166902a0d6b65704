#!/usr/bin/env bash
# HTTP requests over a new connection each, to a loopback server of the host's (node's http, no
# keep-alive), from bench/net-http.c inside `stockade do`:
#   namespaces     do --isolation namespaces --network host          (no sentry: the kernel's)
#   sentry-all     do --isolation sentry --network host               (the sentry, policy all: connect CONTINUEd)
#   sentry-allow   do --allow-net 127.0.0.1:PORT                      (the sentry's network wall: connect checked and performed by it)
# Prints us per request for each (the median of RUNS runs, interleaved) and allow/namespaces,
# the goal of issue 15 (at most 1.3x).
# Usage: sudo bash bench/net-http.sh [RUNS]   (default 5; NET_HTTP_MS, default 1000: each run's length;
#   NET_HTTP_CPU=N runs the server and every sandbox on CPU N alone, taskset -c N: no cross-CPU
#   wake-ups, which on a busy or nested-VM host are most of the spread)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
ms="${NET_HTTP_MS:-1000}"
pin=()
[ -n "${NET_HTTP_CPU:-}" ] && pin=(taskset -c "$NET_HTTP_CPU")
unset NODE_EXTRA_CA_CERTS
stockade="$PWD/bin/stockade"
for tool in gcc node; do command -v "$tool" >/dev/null || { echo "bench/net-http.sh: $tool is not installed" >&2; exit 1; }; done
work=$(mktemp -d /tmp/stockade-net-http.XXXXXX)
server_pid=
cleanup() {
  set +e
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/prog"
# The sandboxed program runs as nobody (do's default user): it must reach its directory.
chmod 755 "$work" "$work/prog"
gcc -static -O2 -Wall -o "$work/prog/net-http" bench/net-http.c

# The server: node's http, no keep-alive; its port on stdout.
"${pin[@]}" node -e '
const http = require("http");
const s = http.createServer((q, r) => { r.setHeader("Connection", "close"); r.end("ok\n"); });
s.keepAliveTimeout = 0;
s.listen(0, "127.0.0.1", () => console.log(s.address().port));
' > "$work/port" &
server_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")

declare -A args=(
  [namespaces]="--isolation namespaces --network host"
  [sentry-all]="--isolation sentry --network host"
  [sentry-allow]="--allow-net 127.0.0.1:$port"
)
order=(namespaces sentry-all sentry-allow)
declare -A results
for ((r = 0; r < runs; r++)); do
  for k in "${order[@]}"; do
    # shellcheck disable=SC2086
    # `do` gives the sandbox a fresh /tmp: --bind shares $work/prog back.
    out=$("${pin[@]}" "$stockade" --root "$work/root" do ${args[$k]} --bind "$work/prog" --cwd "$work/prog" -- "$work/prog/net-http" 127.0.0.1 "$port" "$ms")
    us=$(node -e 'console.log(JSON.parse(process.argv[1]).us_per_request)' "$out")
    results[$k]="${results[$k]:-} $us"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
printf '%-14s %12s   %s\n' 'wall' 'us/request' 'runs'
declare -A med
for k in "${order[@]}"; do
  med[$k]=$(echo "${results[$k]}" | median)
  printf '%-14s %12s  %s\n' "$k" "${med[$k]}" "${results[$k]}"
done
node -e 'const [a, s, n] = process.argv.slice(1).map(Number); console.log(`sentry-allow / namespaces: ${(a / n).toFixed(2)}x (goal <= 1.3x); sentry-all / namespaces: ${(s / n).toFixed(2)}x`);' \
  "${med[sentry-allow]}" "${med[sentry-all]}" "${med[namespaces]}"
