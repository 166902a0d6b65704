#!/usr/bin/env bash
# `<client> run --rm busybox true` through podman, docker and ctr (containerd), each with stockade,
# runc and runsc as the OCI runtime: one hyperfine run per client with the three runtimes side by
# side, then mean ms per runtime, the ratios stockade/runc and stockade/runsc, and whether issue 4's
# goals (podman run --rm with stockade within 1.3x of runc, and issue 16's 1.05x) are met.
# stockade-cold is stockade with its planner off.
# Usage: sudo bash bench/clients.sh [RUNS]   (root; default 10 timed runs per command, 2 warm-up)
#   CLIENTS="podman docker ctr" chooses the clients.
# Every daemon runs on private state below a mktemp directory (never /var/lib/docker,
# /var/lib/containers, /run/containerd or /run/runc); the image is packed here from /bin/busybox
# (busybox-static), as test/clients/image.ts does. Everything started is taken away on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
clients=(${CLIENTS:-podman docker ctr})
# Clients do not set it; in this sandbox it costs every Node start 70 ms (bin/stockade drops it too).
unset NODE_EXTRA_CA_CERTS
stockade="$PWD/bin/stockade"
image=docker.io/library/stockade-bench:busybox
podman_cgroup=/stockade-bench-podman
docker_cgroup=/stockade-bench-docker
ctr_ns=stockade-bench
for tool in hyperfine node tar sha256sum; do command -v "$tool" >/dev/null || { echo "bench/clients.sh: $tool is not installed" >&2; exit 1; }; done

# Short, under /tmp: unix socket paths below it must fit in 107 bytes.
work=$(mktemp -d /tmp/sb-XXXXXX)
# stockade here goes through its planner (the default, said explicitly: docs/design/planner.md);
# stockade-cold is the same runtime with every call a cold Node. Clients do not pass their
# environment on to a runtime: each is a wrapper that sets it.
mkdir -p "$work/bin"
printf '#!/bin/sh\nSTOCKADE_PLANNER=off exec %s "$@"\n' "$stockade" >"$work/bin/stockade-cold"
printf '#!/bin/sh\nSTOCKADE_PLANNER=on exec %s "$@"\n' "$stockade" >"$work/bin/stockade-warm"
chmod 755 "$work/bin/stockade-cold" "$work/bin/stockade-warm"
stockade_cold="$work/bin/stockade-cold"
stockade="$work/bin/stockade-warm"
pids=()  # daemons started here, stopped in reverse order

stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
}

# Processes whose command line names the work directory: conmon, shims, runsc sandboxes and
# whatever a daemon left; all were started by this script, directly or through a client.
pids_under_work() {
  local p
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF "$work" && echo "${p#/proc/}"
  done
  return 0
}

remove_cgroup_tree() {
  local d=$1 sub
  [ -d "$d" ] || return 0
  for sub in "$d"/*/; do [ -d "$sub" ] && remove_cgroup_tree "${sub%/}"; done
  rmdir "$d" 2>/dev/null || true
}

cleanup() {
  set +e
  trap - EXIT INT TERM
  if [ -n "${podman_base+x}" ]; then "${podman_base[@]}" rm --all --force --time 0 >/dev/null 2>&1; fi
  if [ -n "${docker_base+x}" ] && [ -S "$work/docker.sock" ]; then
    ids=$("${docker_base[@]}" ps -aq 2>/dev/null); [ -n "$ids" ] && "${docker_base[@]}" rm -f $ids >/dev/null 2>&1
  fi
  if [ -n "${ctr_base+x}" ] && [ -S "$work/containerd/containerd.sock" ]; then
    for id in $("${ctr_base[@]}" containers list -q 2>/dev/null); do
      "${ctr_base[@]}" task delete --force "$id" >/dev/null 2>&1; "${ctr_base[@]}" containers delete "$id" >/dev/null 2>&1
    done
  fi
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
  left=$(pids_under_work)
  if [ -n "$left" ]; then echo "cleanup: killing leftover processes $left" >&2; kill -KILL $left 2>/dev/null; sleep 0.5; fi
  awk -v w="$work" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    for c in "$podman_cgroup" "$docker_cgroup" "/$ctr_ns"; do remove_cgroup_tree "${h%/}$c"; done
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the image: busybox with its applets, packed as an OCI layout that is also a docker archive ---
build_image() {
  local dir=$work/image rootfs=$work/image/rootfs blobs=$work/image/layout/blobs/sha256 a
  mkdir -p "$rootfs"/{bin,dev,etc,proc,sys,run,tmp,root,usr} "$blobs"
  chmod 1777 "$rootfs/tmp"; chmod 700 "$rootfs/root"
  ln -s bin "$rootfs/sbin"; ln -s ../bin "$rootfs/usr/bin"; ln -s ../bin "$rootfs/usr/sbin"
  cp /bin/busybox "$rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  tar --numeric-owner --sort=name --mtime=@0 -cf "$dir/layer.tar" -C "$rootfs" .
  local layer size; layer=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1); size=$(stat -c %s "$dir/layer.tar")
  mv "$dir/layer.tar" "$blobs/$layer"
  blob() { local d; d=$(printf '%s' "$1" | sha256sum | cut -d' ' -f1); printf '%s' "$1" >"$blobs/$d"; echo "$d ${#1}"; }
  local arch; arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
  read -r cfg cfg_size < <(blob "{\"architecture\":\"$arch\",\"os\":\"linux\",\"created\":\"1970-01-01T00:00:00Z\",\"config\":{\"Env\":[\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"sh\"],\"WorkingDir\":\"/\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$layer\"]}}")
  read -r man man_size < <(blob "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cfg\",\"size\":$cfg_size},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$layer\",\"size\":$size}]}")
  printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/layout/oci-layout"
  # containerd names the image from the first annotation, podman from the second; docker 20.10's
  # loader reads manifest.json.
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$man" "$man_size" "$image" "$image" >"$dir/layout/index.json"
  printf '[{"Config":"blobs/sha256/%s","RepoTags":["%s"],"Layers":["blobs/sha256/%s"]}]' "$cfg" "${image#docker.io/library/}" "$layer" >"$dir/layout/manifest.json"
  tar --numeric-owner -cf "$work/image.tar" -C "$dir/layout" oci-layout index.json manifest.json blobs
  rm -rf "$dir"
}

# Pins a runtime's --root (podman 4.3 does not pass its runtime flags to the delete of its cleanup
# process) and adds runsc's --network=none: runsc's own network stack cannot start here.
wrapper() {
  local name=$1; shift
  mkdir -p "$work/bin"
  printf '#!/bin/sh\nexec %s "$@"\n' "$*" >"$work/bin/$name"
  chmod 755 "$work/bin/$name"
  echo "$work/bin/$name"
}

start_containerd() {
  local dir=$work/containerd
  mkdir -p "$dir"
  cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
EOF
  containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
  pids+=($!)
  wait_for "containerd" "$dir/containerd.log" ctr --address "$dir/containerd.sock" version
}

wait_for() {
  local what=$1 log=$2 i; shift 2
  for ((i = 0; i < 300; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "$what did not start:" >&2; tail -20 "$log" >&2
  return 1
}

# Checks one command before timing it: prints why it cannot run and fails, or succeeds.
try_once() {
  local client=$1 rt=$2; shift 2
  local out
  if out=$(timeout 120 "$@" 2>&1 </dev/null); then return 0; fi
  echo "$rt: cannot run under $client here: $(echo "$out" | grep -v '^$' | tail -2 | tr '\n' ' ' | cut -c1-400)"
  return 1
}

runtimes=(stockade stockade-cold runc runsc)
command -v runsc >/dev/null || { runtimes=(stockade stockade-cold runc); echo "runsc: not installed"; }
[ -n "${RUNTIMES:-}" ] && runtimes=($RUNTIMES)
build_image
mkdir -p "$work/results"

bench_client() {
  local client=$1 shell=$2; shift 2
  # Remaining arguments: name command name command ...
  local args=() ok=()
  while [ $# -gt 0 ]; do
    local rt=$1 c=$2; shift 2
    # shellcheck disable=SC2086 # the command lines are plain words (the ctr one is for sh)
    if [ "$shell" = shell ]; then try_once "$client" "$rt" sh -c "$c" || continue
    else try_once "$client" "$rt" $c || continue; fi
    args+=(-n "$rt" "$c"); ok+=("$rt")
  done
  if [ ${#ok[@]} -eq 0 ]; then echo "$client: no runtime could run"; return 0; fi
  echo "== $client: ${ok[*]}" >&2
  local mode=(-N); [ "$shell" = shell ] && mode=()
  hyperfine "${mode[@]}" --warmup 2 --runs "$runs" --export-json "$work/results/$client.json" "${args[@]}" >&2 \
    || echo "$client: hyperfine failed"
}

for client in "${clients[@]}"; do
  case "$client" in
  podman)
    command -v podman >/dev/null || { echo "podman: not installed"; continue; }
    d=$work/podman
    mkdir -p "$d"
    cat >"$d/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
[engine.runtimes]
stockade = ["$(wrapper podman-stockade "$stockade" --root "$d/state-stockade")"]
stockade-cold = ["$(wrapper podman-stockade-cold "$stockade_cold" --root "$d/state-stockade-cold")"]
runc = ["$(wrapper podman-runc "$(command -v runc)" --root "$d/state-runc")"]
runsc = ["$(wrapper podman-runsc "$(command -v runsc || echo runsc)" --root "$d/state-runsc" --network=none)"]
EOF
    export CONTAINERS_CONF=$d/containers.conf
    podman_base=(podman --root "$d/root" --runroot "$d/run" --tmpdir "$d/tmp" --volumepath "$d/volumes"
      --network-config-dir "$d/networks" --storage-driver vfs)
    (cd "$d" && "${podman_base[@]}" load --input "$work/image.tar" >/dev/null)
    cmds=()
    for rt in "${runtimes[@]}"; do
      cmds+=("$rt" "${podman_base[*]} --runtime $rt run --rm --network none --cgroup-parent $podman_cgroup $image true")
    done
    (cd "$d" && bench_client podman plain "${cmds[@]}")
    ;;
  docker)
    command -v dockerd >/dev/null || { echo "docker: dockerd not installed"; continue; }
    [ -S "$work/containerd/containerd.sock" ] || start_containerd
    d=$work/docker
    mkdir -p "$d/client-config"
    runsc_path=$(command -v runsc || echo /usr/bin/runsc)
    printf '{"runtimes":{"stockade":{"path":"%s"},"stockade-cold":{"path":"%s"},"runsc":{"path":"%s","runtimeArgs":["--network=none"]}}}\n' "$stockade" "$stockade_cold" "$runsc_path" >"$d/daemon.json"
    dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/dockerd.pid" \
      --host "unix://$work/docker.sock" --containerd "$work/containerd/containerd.sock" --bridge none \
      --iptables=false --ip6tables=false --ip-masq=false --storage-driver vfs --cgroup-parent "$docker_cgroup" \
      >"$d/dockerd.log" 2>&1 &
    pids+=($!)
    export DOCKER_CONFIG=$d/client-config
    # The docker.io package's client speaks the daemon's API version.
    docker_bin=/usr/bin/docker; [ -x "$docker_bin" ] || docker_bin=$(command -v docker)
    docker_base=("$docker_bin" --host "unix://$work/docker.sock")
    wait_for dockerd "$d/dockerd.log" "${docker_base[@]}" version
    "${docker_base[@]}" load --input "$work/image.tar" >/dev/null
    cmds=()
    for rt in "${runtimes[@]}"; do cmds+=("$rt" "${docker_base[*]} run --rm --runtime $rt --network none $image true"); done
    bench_client docker plain "${cmds[@]}"
    ;;
  ctr)
    command -v containerd >/dev/null || { echo "ctr: containerd not installed"; continue; }
    [ -S "$work/containerd/containerd.sock" ] || start_containerd
    ctr_base=(ctr --address "$work/containerd/containerd.sock" --namespace "$ctr_ns")
    "${ctr_base[@]}" images import "$work/image.tar" >/dev/null
    mkdir -p "$work/ctr/fifo"
    # ctr 1.6 picks a runtime binary per container through the runc shim's options (--runc-binary,
    # --runc-root); runsc goes through the same shim by a wrapper that adds --network=none.
    declare -A binary=([stockade]=$stockade [stockade-cold]=$stockade_cold [runc]=$(command -v runc)
      [runsc]=$(wrapper ctr-runsc "$(command -v runsc || echo runsc)" --network=none))
    cmds=()
    # Each run needs a fresh container id: $$ of the shell hyperfine starts it in.
    for rt in "${runtimes[@]}"; do
      cmds+=("$rt" "${ctr_base[*]} run --rm --fifo-dir $work/ctr/fifo --runtime io.containerd.runc.v2 --runc-binary ${binary[$rt]} --runc-root $work/ctr/root-$rt $image bench-$rt-\$\$ true")
    done
    bench_client ctr shell "${cmds[@]}"
    ;;
  *) echo "unknown client $client (podman, docker, ctr)" >&2 ;;
  esac
done

node - "$work/results" "${clients[@]}" <<'EOF'
const fs = require('fs');
const [dir, ...clients] = process.argv.slice(2);
const by = {};
for (const c of clients) {
  try {
    by[c] = Object.fromEntries(JSON.parse(fs.readFileSync(`${dir}/${c}.json`, 'utf8')).results.map((r) => [r.command, r]));
  } catch { /* not measured: said why above */ }
}
const rts = ['stockade', 'stockade-cold', 'runc', 'runsc'];
const cell = (r) => (r ? `${(r.mean * 1000).toFixed(1)} ± ${(r.stddev * 1000).toFixed(1)}` : '-');
const ratio = (a, b) => (a && b ? `${(a.mean / b.mean).toFixed(2)}x` : '-');
const head = ['client (mean ms ± sd)', ...rts, 'stockade/runc', 'cold/runc', 'stockade/runsc'];
const rows = Object.entries(by).map(([c, r]) => [c, ...rts.map((rt) => cell(r[rt])), ratio(r.stockade, r.runc), ratio(r['stockade-cold'], r.runc), ratio(r.stockade, r.runsc)]);
const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r) => r.map((x, i) => (i === 0 ? x.padEnd(w[i]) : x.padStart(w[i]))).join('  ');
console.log(`\n${line(head)}\n${w.map((n) => '-'.repeat(n)).join('  ')}`);
for (const r of rows) console.log(line(r));
const p = by.podman;
if (p?.stockade && p?.runc) {
  const r = p.stockade.mean / p.runc.mean;
  console.log(`\nissue 4 goal, podman run --rm busybox true with stockade within 1.3x of runc: ${r <= 1.3 ? 'met' : 'not met'} (${r.toFixed(2)}x)`);
  console.log(`issue 16 goal, the same within 1.05x of runc (planner, the default): ${r <= 1.05 ? 'met' : 'not met'} (${r.toFixed(2)}x)`);
} else {
  console.log('\nissue 4 goal, podman run --rm busybox true with stockade within 1.3x of runc: not measurable (no podman result for both)');
}
EOF
