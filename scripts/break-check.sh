#!/usr/bin/env bash
# A green run must mean these parts work: each is broken on purpose, one at a time, in a copy of
# HEAD, the test files that cover it are run through the suite runner (test/ci/run-suite.ts: a
# failure or a skip not on the accepted list fails it), and the run must go red. Prints one line
# per break; exits non-zero when a break left the run green (the suite no longer sees it) or no
# longer applies (the code it edits moved: update the break here).
#
# Usage: sudo bash scripts/break-check.sh [NAME...]   (every break by default)
# Root: the covering tests make containers, cgroups and daemons. Nothing of the checkout changes.
# Each break rebuilds: 4-10 min apiece at load 15-20 here (43 min for all seven on 2026-12-07).
# On a machine without docker or containerd their tiers skip (an accepted limit) and those breaks
# read as still green: run it where scripts/setup.sh has installed them.
set -uo pipefail
cd "$(dirname "$0")/.."
base=$(mktemp -d /tmp/stockade-break-check-XXXXXX)
copy="$base/stockade"
# The copy goes at the end; each break's log stays in $base for a look.
trap 'rm -rf "$copy"' EXIT
mkdir "$copy"
git archive HEAD | tar -x -C "$copy"
cd "$copy"
git init -q && git add -A && git -c user.name=break-check -c user.email=break-check@localhost commit -qm HEAD
npm ci --no-audit --no-fund --loglevel=error >"$base/npm-ci.log" 2>&1 || { tail -20 "$base/npm-ci.log"; exit 2; }

# NAME|FILE|TEXT|REPLACEMENT|TEST FILES: TEXT must occur exactly once in FILE.
BREAKS=(
  "dockerd-start|test/clients/docker.ts|'--bridge', 'none',|'--bridge', 'none', '--no-such-flag',|test/clients/docker.test.js"
  "containerd-start|test/clients/containerd.ts|    'version = 2',|    'version = 2', 'this is not toml',|test/clients/containerd.test.js"
  "pause-fails|src/container/pause.ts|    await d.driver.pause(d.container);|    await d.driver.pause(d.container); throw new Error('pause broken on purpose');|test/integration/exec.test.js"
  "pause-freezes-nothing|src/namespaces/driver.ts|      await requireCgroups(c.record, 'pause').freeze();|      requireCgroups(c.record, 'pause');|test/integration/exec.test.js"
  "seccomp-loader-compile|test/helpers/seccomp-loader.ts|#define _GNU_SOURCE|#error broken on purpose|test/unit/seccomp/kernel.test.js test/unit/sentry/kernel.test.js"
  "v2-devices-not-attached|src/cgroups/v2-devices.ts|    bpfCgroupDeviceAttach(cgroup, prog);|    void bpfCgroupDeviceAttach;|test/integration/cgroups.test.js"
  "v2-devices-deny-rule-ignored|src/cgroups/device-bpf.ts|      else e.exit(0);|      else e.jump(BPF_JMP_JA, 0, 0, decided);|test/integration/cgroup-v2-guest.test.js"
)

rebuild() { npx tsc -p tsconfig.json && npm run -s build:bundle && npm run -s build:cache >/dev/null && npx tsc -p tsconfig.test.json; }

failed=0
for b in "${BREAKS[@]}"; do
  IFS='|' read -r name file text replacement files <<<"$b"
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
  if ! node -e '
    const fs = require("fs"); const [file, text, rep] = process.argv.slice(1);
    const s = fs.readFileSync(file, "utf8"); const n = s.split(text).length - 1;
    if (n !== 1) { console.error(`${file}: "${text}" occurs ${n} times, not once`); process.exit(1); }
    fs.writeFileSync(file, s.replace(text, () => rep));' "$file" "$text" "$replacement"; then
    echo "$name: NO LONGER APPLIES (edit the break in scripts/break-check.sh)"; failed=1; continue
  fi
  log="$base/$name.log"
  start=$(date +%s)
  if ! rebuild >"$log" 2>&1; then
    echo "$name: the break does not build (see below)"; tail -5 "$log"; failed=1
  else
    set -f; paths=(); for f in $files; do paths+=("dist-test/$f"); done; set +f
    node dist-test/test/ci/run-suite.js "${paths[@]}" >>"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    if [ $rc -eq 0 ]; then
      echo "$name: STILL GREEN after ${took} s: the suite does not see this break"; failed=1
    else
      counts=$(grep -E '^ℹ (tests|pass|fail|cancelled|skipped) ' "$log" | awk '{printf "%s %s ", $2, $3}')
      echo "$name: red (exit $rc, ${took} s with the build; ${counts% })"
      # The first failing test, and the first error the run printed (a hook's failure cancels its tests).
      grep -E -m1 '^\s*✖ ' "$log" | sed 's/^ */    /'
      grep -E -m1 -A2 '^\s*(\w*Error)\b[^:]*:' "$log" | sed 's/^ */      /'
    fi
  fi
  git checkout -q -- .
done
echo "logs: $base"
exit $failed
