// Which calls the planner serves, decided before it does anything (a call it declines runs cold,
// from the start, in Node; one it took must not be handed back with a line already logged).
import { isAbsolute, join, resolve } from 'node:path';
import { bool, parseArgs, str, type FlagSpec } from '../cli/args';
import { splitGlobal } from '../cli/main';
import { CREATE_FLAGS } from '../cli/create';
import { UPDATE_FLAGS } from '../cli/update';
import { DEFAULT_ROOT } from '../container/state-store';
import { DEFAULT_LEVEL } from '../levels/registry';
import { ISOLATION_ANNOTATION } from '../container/level';
import { readInputFile } from '../oci/input-file';
import { DO_FLAGS, DO_PARSE, doIsolation } from '../cli/do';

/**
 * The commands a front sends here; every other one runs cold (native/light/planner.c has the same
 * list). state, ps, pause, resume, update and `events --stats` act on one container that is
 * already there and spawn nothing of their own but ps(1); list reads every container, and deletes
 * those a killed `do` left, at any level (a deletion starts nothing that outlives it); spec and
 * features read nothing of the root; images and rmi read and prune its image store. pull stays
 * cold: a ^C would not stop it in the planner (run --image's pull is the planner's, see
 * planner.md). A streaming `events` is declined: it holds the one call a planner serves for as
 * long as the caller reads (docs/design/planner.md).
 */
export const SERVED = ['create', 'run', 'exec', 'state', 'ps', 'pause', 'resume', 'update', 'do', 'events', 'list', 'spec', 'features', 'images', 'rmi'] as const;

/** Served whatever the root holds: they act on no one container (images and rmi on the root's image store). */
const ON_NONE = new Set(['list', 'spec', 'features', 'images', 'rmi']);

/** The level whose every served command the planner runs: a host process with no supervisor beside it. */
const LEVEL = 'namespaces';

/**
 * The levels whose create and run it serves: the sentry's and the VM's supervisors (the sentry
 * process and its watch, the keeper) are started by the front (src/native/supervisor-spawner.ts),
 * as stockade-init is. The front asks for no other level (native/light/planner.c).
 */
export const SERVED_LEVELS = ['namespaces', 'sentry', 'vm'] as const;

function servedLevel(level: string): boolean {
  return (SERVED_LEVELS as readonly string[]).includes(level);
}

/** Why the call is declined, or undefined when the planner serves it. */
export function declined(argv: readonly string[], cwd: string): string | undefined {
  const { global, command, rest } = splitGlobal(argv);
  if (command === undefined || !(SERVED as readonly string[]).includes(command)) return `command ${command ?? '(none)'}`;
  const g = globalValues(global);
  const isolation = g.get('isolation') ?? DEFAULT_LEVEL;
  if (command === 'do') return isolation !== LEVEL ? `--isolation ${isolation}` : doDeclined(rest, isolation);
  if (!servedLevel(isolation)) return `--isolation ${isolation}`;
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  // Only create, run and exec are served at the supervised levels.
  if (isolation !== LEVEL && command !== 'create' && command !== 'run' && command !== 'exec') return `--isolation ${isolation}`;
  if (ON_NONE.has(command)) return undefined;
  if (command === 'exec') return execDeclined(own, g.get('root') ?? DEFAULT_ROOT, cwd);
  if (command !== 'create' && command !== 'run') return onOneDeclined(command, own, g.get('root') ?? DEFAULT_ROOT, cwd);
  // An image's container is made at the level --isolation names, without a terminal: through the
  // planner at namespaces only so far (the image path with a front-started supervisor is untried).
  if (command === 'run' && own.some((a) => a === '--image' || a.startsWith('--image='))) return isolation === LEVEL ? undefined : `--isolation ${isolation}`;
  const flags: FlagSpec[] = [...CREATE_FLAGS, { name: 'detach', type: 'bool', short: 'd' }, { name: 'keep', type: 'bool' }];
  let p;
  try {
    p = parseArgs(own, flags, command);
  } catch {
    return undefined; // the planner words the usage error as the CLI would
  }
  const config = readJson(join(resolve(cwd, str(p, 'bundle') ?? '.'), 'config.json'));
  if (config === undefined) return undefined; // the same: a missing or malformed config is an error it reports
  const level = annotation(config) ?? isolation;
  if (!servedLevel(level)) return `level ${level}`;
  // The caller's terminal relayed by the front is tried at namespaces only, so far.
  if (level !== LEVEL && command === 'run' && terminal(config) && !bool(p, 'detach') && str(p, 'console-socket') === undefined) return `a terminal to relay at ${level}`;
  return undefined;
}

/** do at the level it would run at (its own --isolation, --allow-net's policy level, the global one). */
function doDeclined(rest: readonly string[], globalIsolation: string): string | undefined {
  let p;
  try {
    p = parseArgs(rest, DO_FLAGS, 'do', DO_PARSE);
  } catch {
    return undefined; // the usage error, worded as cold
  }
  const level = doIsolation(p, globalIsolation);
  return level === LEVEL ? undefined : `do --isolation ${level}`;
}

/** state, ps, pause, resume, update, events --stats: served for a container of this level; a usage error is worded here as cold. */
function onOneDeclined(command: string, own: readonly string[], root: string, cwd: string): string | undefined {
  let p;
  try {
    if (command === 'update') p = parseArgs(own, UPDATE_FLAGS, command);
    else if (command === 'ps') p = parseArgs(own, [{ name: 'format', type: 'string', short: 'f' }], command, { stopAfterPositionals: 1 });
    else if (command === 'events') p = parseArgs(own, [{ name: 'stats', type: 'bool' }, { name: 'interval', type: 'string' }], command);
    else p = parseArgs(own, [], command);
  } catch {
    return undefined;
  }
  if (command === 'events' && !bool(p, 'stats')) return 'events (a stream)';
  return levelDeclined(p.positional[0], root, cwd);
}

/** Declined when the container id names one at another level; an id that names none is the command's error to word. */
function levelDeclined(id: string | undefined, root: string, cwd: string, served: readonly string[] = [LEVEL]): string | undefined {
  if (id === undefined || id.includes('/')) return undefined;
  const record = readJson(join(isAbsolute(root) ? root : resolve(cwd, root), id, 'state.json'));
  const level = (record as { level?: unknown } | undefined)?.level;
  return level === undefined || served.includes(String(level)) ? undefined : `level ${String(level)}`;
}

function execDeclined(own: readonly string[], root: string, cwd: string): string | undefined {
  // The id is the first word that is not a flag or a flag's value; exec's flags with a value:
  const valued = new Set(['-p', '--process', '--console-socket', '--pid-file', '--cwd', '-e', '--env', '-u', '--user', '-g', '--additional-gids', '-c', '--cap', '--preserve-fds', '--process-label', '--apparmor', '--cgroup']);
  let id: string | undefined;
  let detach = false;
  for (let i = 0; i < own.length; i++) {
    const a = own[i] ?? '';
    if (!a.startsWith('-')) { id = a; break; }
    const name = a.split('=')[0] ?? '';
    if (name === '-d' || name === '--detach') detach = true;
    if (valued.has(name) && !a.includes('=')) i++;
  }
  // A process exec'd at sentry joins its container's sentry (nothing to start); a detached one at
  // vm gets a stand-in the front starts. An attached one at vm is relayed by the calling process
  // between its own stdio and the keeper, which the planner's stdio is not.
  return levelDeclined(id, root, cwd, detach ? ['namespaces', 'sentry', 'vm'] : ['namespaces', 'sentry']);
}

function globalValues(global: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < global.length; i++) {
    const a = global[i] ?? '';
    const name = a.replace(/^--?/, '').split('=')[0] ?? '';
    if (name !== 'root' && name !== 'isolation') continue;
    out.set(name, a.includes('=') ? a.slice(a.indexOf('=') + 1) : global[i + 1] ?? '');
  }
  return out;
}

/** A file the call names, read only as the CLI reads its input (a FIFO or a device is never opened to wait on). */
function readJson(path: string): unknown {
  const read = readInputFile(path);
  if (!read.ok) return undefined;
  try {
    return JSON.parse(read.text) as unknown;
  } catch {
    return undefined;
  }
}

function annotation(config: unknown): string | undefined {
  const v = (config as { annotations?: Record<string, unknown> }).annotations?.[ISOLATION_ANNOTATION];
  return typeof v === 'string' ? v : undefined;
}

function terminal(config: unknown): boolean {
  return (config as { process?: { terminal?: unknown } }).process?.terminal === true;
}
