#!/usr/bin/env bash
# `<client> run --rm busybox true` through podman, docker and ctr (containerd), each with stockade,
# runc and runsc as the runtime, side by side with hyperfine; prints the means and the ratios.
#
#   sudo bash bench/clients.sh [RUNS] [podman|docker|containerd]...
#
# Every client runs on private state under one temporary directory, with its own containerd and
# dockerd where it needs them; all of it is stopped and removed on exit. The image is a busybox
# root file system built here from busybox-static (nothing is pulled).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
shift || true
CLIENTS=("$@")
[ ${#CLIENTS[@]} -eq 0 ] && CLIENTS=(podman docker containerd)
STOCKADE=$(pwd)/bin/stockade
# Clients do not set it, and it costs every Node start 70 ms here (see bin/stockade).
unset NODE_EXTRA_CA_CERTS

for tool in hyperfine busybox runc; do
  command -v "$tool" >/dev/null || { echo "bench/clients: $tool is not installed (bash scripts/setup.sh)" >&2; exit 1; }
done
[ -x build/Release/stockade-init ] || { echo "bench/clients: stockade is not built (npm run build)" >&2; exit 1; }

W=$(mktemp -d /tmp/stockade-bench-clients.XXXXXX)
PIDS=()
cleanup() {
  set +e
  if [ -S "$W/docker.sock" ]; then
    docker_ ps -aq | xargs -r docker --host "unix://$W/docker.sock" rm -f >/dev/null 2>&1
  fi
  if [ -S "$W/ctr/containerd.sock" ]; then
    for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ task kill -s KILL "$c" >/dev/null 2>&1; ctr_ containers rm "$c" >/dev/null 2>&1; done
  fi
  [ -f "$W/podman.conf" ] && podman_ rm -af -t 0 >/dev/null 2>&1
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -9 "$p" 2>/dev/null; done
  # Shims and mounts left by the daemons go with the directory.
  pkill -9 -f "containerd-shim.*$W" 2>/dev/null
  grep -o " $W[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$W"
  find /sys/fs/cgroup -depth -type d -name 'stockade-bench-clients' -exec rmdir {} \; 2>/dev/null
}
trap cleanup EXIT

# A runtime command line each client can take: runsc needs --network=none on this host.
mkdir -p "$W/bin"
printf '#!/bin/sh\nexec runsc --network=none "$@"\n' >"$W/bin/runsc-none"
chmod +x "$W/bin/runsc-none"
declare -A RUNTIME=([stockade]=$STOCKADE [runc]=$(command -v runc))
command -v runsc >/dev/null && RUNTIME[runsc]=$W/bin/runsc-none
ORDER=(stockade runc)
[ -n "${RUNTIME[runsc]:-}" ] && ORDER+=(runsc)

# The image: busybox-static with its applets, as a rootfs tar.
mkdir -p "$W/rootfs/bin"
cp "$(command -v busybox)" "$W/rootfs/bin/busybox"
for applet in sh true echo sleep cat; do ln -s busybox "$W/rootfs/bin/$applet"; done
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .

podman_() { CONTAINERS_CONF=$W/podman.conf podman --root "$W/podman/root" --runroot "$W/podman/run" --tmpdir "$W/podman/tmp" "$@"; }
docker_() { /usr/bin/docker --host "unix://$W/docker.sock" "$@"; }
ctr_() { ctr --address "$W/ctr/containerd.sock" --namespace bench "$@"; }

start_containerd() { # DIR
  mkdir -p "$1"
  cat >"$1/config.toml" <<EOF
version = 2
root = "$1/root"
state = "$1/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$1/containerd.sock"
[ttrpc]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$1/opt"
EOF
  containerd --config "$1/config.toml" >"$1/log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do ctr --address "$1/containerd.sock" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "bench/clients: containerd did not start (see $1/log)" >&2; return 1
}

declare -A COMMANDS
setup_podman() {
  command -v podman >/dev/null || { echo "podman: not installed"; return 1; }
  {
    echo '[containers]'
    echo 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]'
    echo '[engine]'
    echo 'cgroup_manager = "cgroupfs"'
    echo 'events_logger = "file"'
    echo '[engine.runtimes]'
    for rt in "${ORDER[@]}"; do
      # Pinned --root: podman 4.3 does not pass --runtime-flag to its cleanup delete.
      printf '#!/bin/sh\nexec %s --root %s "$@"\n' "${RUNTIME[$rt]}" "$W/podman/state-$rt" >"$W/bin/podman-$rt"
      chmod +x "$W/bin/podman-$rt"
      echo "$rt = [\"$W/bin/podman-$rt\"]"
    done
  } >"$W/podman.conf"
  podman_ import "$W/rootfs.tar" localhost/busybox:bench >/dev/null
  for rt in "${ORDER[@]}"; do
    COMMANDS[podman/$rt]="CONTAINERS_CONF=$W/podman.conf podman --root $W/podman/root --runroot $W/podman/run --tmpdir $W/podman/tmp --runtime $rt run --rm --network none --cgroup-parent /stockade-bench-clients localhost/busybox:bench true"
  done
}

setup_docker() {
  command -v dockerd >/dev/null && [ -x /usr/bin/docker ] || { echo "docker: docker.io is not installed"; return 1; }
  start_containerd "$W/docker-containerd" || return 1
  local runtimes=""
  for rt in "${ORDER[@]}"; do runtimes+="${runtimes:+,}\"bench-$rt\": {\"path\": \"${RUNTIME[$rt]}\"}"; done
  echo "{\"runtimes\": {$runtimes}}" >"$W/daemon.json"
  dockerd --config-file "$W/daemon.json" --data-root "$W/docker/data" --exec-root "$W/docker/exec" --pidfile "$W/docker/pid" \
    --host "unix://$W/docker.sock" --containerd "$W/docker-containerd/containerd.sock" --bridge none --iptables=false \
    --ip6tables=false --ip-masq=false --storage-driver vfs --cgroup-parent /stockade-bench-clients >"$W/dockerd.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do docker_ version >/dev/null 2>&1 && break; sleep 0.1; done
  docker_ version >/dev/null 2>&1 || { echo "docker: dockerd did not start (see $W/dockerd.log)"; return 1; }
  docker_ import "$W/rootfs.tar" busybox:bench >/dev/null
  for rt in "${ORDER[@]}"; do
    COMMANDS[docker/$rt]="/usr/bin/docker --host unix://$W/docker.sock run --rm --network none --runtime bench-$rt busybox:bench true"
  done
}

setup_containerd() {
  command -v ctr >/dev/null || { echo "containerd: not installed"; return 1; }
  start_containerd "$W/ctr" || return 1
  # ctr takes an OCI or docker archive; the one from docker save has a name ctr keeps.
  if [ -S "$W/docker.sock" ]; then
    docker_ save busybox:bench -o "$W/image.tar"
  else
    echo "containerd: needs the docker client to pack the image (run with docker too)"; return 1
  fi
  ctr_ images import "$W/image.tar" >/dev/null
  local ref
  ref=$(ctr_ images ls -q | grep busybox | head -1)
  for rt in "${ORDER[@]}"; do
    # ctr needs a fresh container id per run.
    COMMANDS[containerd/$rt]="ctr --address $W/ctr/containerd.sock --namespace bench run --rm --runc-binary ${RUNTIME[$rt]} --runc-root $W/ctr/state-$rt $ref b\$RANDOM\$RANDOM true"
  done
}

# ctr's image comes from docker save: docker is set up first whenever containerd is asked for.
want() { local c; for c in "${CLIENTS[@]}"; do [ "$c" = "$1" ] && return 0; done; return 1; }
want containerd && ! want docker && CLIENTS=(docker "${CLIENTS[@]}")

printf 'bench/clients: %s runs each, %s\n' "$RUNS" "$(date -u +%FT%TZ)"
declare -A MEAN
for client in "${CLIENTS[@]}"; do
  if ! "setup_$client"; then echo "$client: skipped"; continue; fi
  args=()
  for rt in "${ORDER[@]}"; do
    cmd=${COMMANDS[$client/$rt]}
    # One run first: a runtime that cannot run under this client is reported, not timed.
    if ! out=$(bash -c "$cmd" 2>&1); then
      echo "$client/$rt: cannot run here: $(echo "$out" | tail -1)"
      continue
    fi
    args+=(-n "$client/$rt" "$cmd")
  done
  [ ${#args[@]} -eq 0 ] && continue
  hyperfine -w 2 -r "$RUNS" --export-json "$W/$client.json" "${args[@]}" | grep -E '^Benchmark|Time \(mean'
  while read -r name mean; do MEAN[$name]=$mean; done < <(node -e '
    for (const r of JSON.parse(require("fs").readFileSync(process.argv[1])).results) console.log(r.command, (r.mean * 1000).toFixed(1));
  ' "$W/$client.json")
done

echo
printf '%-12s %10s %10s %10s %14s %14s\n' client stockade runc runsc stockade/runc stockade/runsc
for client in "${CLIENTS[@]}"; do
  s=${MEAN[$client/stockade]:-} r=${MEAN[$client/runc]:-} g=${MEAN[$client/runsc]:-}
  [ -z "$s" ] && continue
  ratio() { [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}' || echo -; }
  printf '%-12s %8s ms %8s ms %8s ms %14s %14s\n' "$client" "$s" "${r:--}" "${g:--}" "$(ratio "$s" "$r")" "$(ratio "$s" "$g")"
done
if [ -n "${MEAN[podman/stockade]:-}" ] && [ -n "${MEAN[podman/runc]:-}" ]; then
  awk -v a="${MEAN[podman/stockade]}" -v b="${MEAN[podman/runc]}" 'BEGIN{r=a/b; printf "goal: podman run --rm busybox true within 1.3x runc: %.2fx, %s\n", r, (r <= 1.3 ? "met" : "not met")}'
fi
