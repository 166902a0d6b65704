#!/usr/bin/env bash
# `stockade pull` (fetch, verify and unpack) of a many-layer image against `skopeo copy` + `umoci unpack`
# of the same image from the same local registry, in one run; prints both times and their ratio.
# Usage: sudo bash bench/pull.sh [LAYERS] [RUNS]   (root: unpacking keeps owners; needs docker-registry, skopeo, umoci, hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
layers="${1:-24}"
runs="${2:-5}"
unset NODE_EXTRA_CA_CERTS
for t in docker-registry skopeo umoci hyperfine; do
  command -v "$t" >/dev/null || { echo "bench/pull.sh: $t is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
done
[ -f dist-test/test/unit/image/build.js ] || npx tsc -p tsconfig.test.json
work=$(mktemp -d /tmp/stockade-bench-pull.XXXXXX)
registry_pid=
cleanup() { [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -s "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; node -e 'setTimeout(()=>{},100)'; done
# LAYERS gzip layers of 200 files each (8 kB of base64 text: compressible, as real files are), on a busybox base.
node -e '
const b = require("./dist-test/test/unit/image/build.js");
const { randomBytes } = require("crypto");
(async () => {
  const n = Number(process.argv[2]);
  const layers = [{ data: await b.busyboxLayer(), gzip: true }];
  for (let i = 0; i < n; i++) {
    const entries = [{ name: `data${i}/`, type: "directory" }];
    for (let f = 0; f < 200; f++) entries.push({ name: `data${i}/f${f}`, body: randomBytes(6144).toString("base64") });
    layers.push({ data: await b.layerTar(entries), gzip: true });
  }
  b.ociLayout(process.argv[1], { layers, config: { Cmd: ["sh"] } });
})();
' "$work/layout" "$layers"
ref="127.0.0.1:$port/bench/many:v1"
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:latest" "docker://$ref"
echo "image: $((layers + 1)) layers, $(du -sh "$work/layout" | cut -f1) in the registry"
stockade="$PWD/bin/stockade"
hyperfine --runs "$runs" --export-json "$work/result.json" \
  --prepare "rm -rf $work/s" -n "stockade pull" "$stockade --root $work/s pull $ref" \
  --prepare "rm -rf $work/o $work/b" -n "skopeo copy + umoci unpack" \
  "skopeo copy -q --src-tls-verify=false docker://$ref oci:$work/o:v1 && umoci unpack --image $work/o:v1 $work/b"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results;
const [s, u] = r;
console.log(`stockade pull: ${(s.median * 1000).toFixed(0)} ms median; skopeo + umoci: ${(u.median * 1000).toFixed(0)} ms median; ratio stockade/peers = ${(s.median / u.median).toFixed(2)}`);
' "$work/result.json"
