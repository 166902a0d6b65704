// Exercises the code a `create` runs, without side effects, so the build's code cache
// (src/tools/gen-code-cache.ts) holds those functions compiled. Its modules are required inside
// the function: a call that never warms up does not load them for it.

export function warmUp(): void {
  const { defaultSpec } = require('../oci/default-spec') as typeof import('../oci/default-spec');
  const { parseConfig } = require('../oci/validate') as typeof import('../oci/validate');
  const { buildPlan } = require('../container/plan') as typeof import('../container/plan');
  const { parseSignal } = require('../container/signals') as typeof import('../container/signals');
  const { encodePlan } = require('../native/protocol') as typeof import('../native/protocol');
  const { compileCached, defaultSeccompProfile, parseSeccomp } = require('../seccomp') as typeof import('../seccomp');
  const { mkdtempSync, rmSync } = require('node:fs') as typeof import('node:fs');
  const { tmpdir } = require('node:os') as typeof import('node:os');
  const { join } = require('node:path') as typeof import('node:path');
  const { COMMANDS } = require('./commands') as typeof import('./commands');

  for (const load of Object.values(COMMANDS)) load();
  const base = defaultSpec();
  if (base.process !== undefined) base.process.terminal = false;
  base.root = { path: '/', readonly: true };
  base.linux = { ...base.linux, seccomp: defaultSeccompProfile() };
  const spec = parseConfig(JSON.stringify(base), 'config.json');
  const profile = parseSeccomp(spec.linux?.seccomp);
  // A miss then a hit: both paths of the filter cache, in a directory of its own.
  const cacheDir = mkdtempSync(join(tmpdir(), 'stockade-warm-up-'));
  let compiled;
  try {
    compileCached(profile, {}, cacheDir);
    compiled = compileCached(profile, {}, cacheDir);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
  encodePlan(buildPlan(spec, {
    id: 'warm-up',
    bundle: '/',
    rootfsMountpoint: '/',
    startSocket: '/warm-up.sock',
    consoleSocket: undefined,
    preserveFds: 0,
    noPivot: false,
    noNewKeyring: false,
    monitor: false,
    rootfsMode: 'bind',
    createHooks: false,
    seccomp: { flags: compiled.flags, program: compiled.program },
    heldCapabilities: (1n << 41n) - 1n,
    cgroupPaths: [],
  }));
  parseSignal('TERM');
  // `do` has work of its own before its create: its options, identity, hidden paths and spec.
  (require('./do-warm-up') as typeof import('./do-warm-up')).warmUpDo();
}
