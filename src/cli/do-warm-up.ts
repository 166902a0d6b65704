// Exercises what `stockade do` itself computes before its container is made, without side effects,
// so that the build's code cache holds those functions compiled (src/cli/warm-up.ts runs it).
//
// Without it every cold `do` compiled its own code from source: the option checks, the identity,
// the hidden credential locations, the working directory, the spec and its plan. The warm-up of
// `create` never reaches them, and they grew with issue 19.

export function warmUpDo(): void {
  const { command } = require('./do') as typeof import('./do');
  const { doBindIdmap, doIdentity, canReach } = require('../container/do-identity') as typeof import('../container/do-identity');
  const { checkHiddenChoice, homeDirectories, maskedForDo, existingHidden } = require('../container/do-hidden') as typeof import('../container/do-hidden');
  const { DO_DEFAULT_LIMITS, DO_FRESH, doSpec, doTmpfsSizes, doWorkingDirectory } = require('../container/do-spec') as typeof import('../container/do-spec');
  const { buildPlan } = require('../container/plan') as typeof import('../container/plan');
  const { encodePlan } = require('../native/protocol') as typeof import('../native/protocol');
  const { doLimits, doTimeout, homeOf, mergeEnv } = require('./do') as typeof import('./do');

  // The command's own body up to its first check of a value: a --memory it refuses, before any
  // state root, level or file is touched (the context holds no store, log or levels to touch).
  // Compiling run() compiles the whole of it.
  void command.run(['--isolation', 'namespaces', '--memory', 'none', '--', 'true'], { isolation: 'namespaces' } as never).catch(() => undefined);

  const identity = doIdentity(undefined, {}, { uid: 0, gid: 0 });
  doBindIdmap(identity);
  const limits = doLimits(undefined, undefined, undefined);
  doTimeout(undefined);
  const env = mergeEnv(['PATH=/usr/bin:/bin', `HOME=${homeOf(identity.uid)}`], ['TERM=dumb']);
  // Reads only: the root directory, /root and /home's entries, the hidden names present there.
  const cwd = doWorkingDirectory(undefined, '/', [], [], () => undefined, { canEnter: (dir) => canReach(dir, identity, []), who: 'nobody' });
  const homes = homeDirectories();
  const choice = checkHiddenChoice([], [], '/', homes, DO_FRESH);
  const masked = maskedForDo(existingHidden(homes), choice, [], [...DO_FRESH, '/var/lib/stockade']);
  const spec = doSpec({
    args: ['true'], env, cwd, network: 'none', rw: false, uid: identity.uid, gid: identity.gid,
    limits: { ...DO_DEFAULT_LIMITS, ...limits }, hidden: ['/var/lib/stockade'], binds: [], tmpfs: [], terminal: false, masked,
  });
  encodePlan(buildPlan(spec, {
    id: 'warm-up-do',
    bundle: '/',
    rootfsMountpoint: '/var/lib/stockade/warm-up-do/rootfs',
    startSocket: '/var/lib/stockade/warm-up-do/start.sock',
    consoleSocket: undefined,
    preserveFds: 0,
    noPivot: false,
    noNewKeyring: false,
    monitor: true,
    rootfsMode: 'recursive-readonly',
    createHooks: false,
    heldCapabilities: (1n << 41n) - 1n,
    cgroupPaths: [],
    init: true,
    tiedTo: 1,
    overlayTmpfs: doTmpfsSizes(limits.memory).overlay,
  }));
}
