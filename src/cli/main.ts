// The stockade CLI entry: global flags as runc has them, then one command from the table.
import { closeSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { StateStore, DEFAULT_ROOT } from '../container/state-store';
import { StockadeError, errnoCode, isStockadeError } from '../errors';
import { parseArgs, bool, str, type FlagSpec } from './args';
import { COMMANDS } from './commands';
import type { Command } from './context';
import { HELP } from './help';
import { Logger, err, out, type LogFormat } from '../log/logger';
import { mark } from '../log/timing';
import { exitStatusOf } from './exit-status';
import { availableLevels, DEFAULT_LEVEL, levelEntry, levelNames, levelRegistry, LEVELS } from '../levels/registry';
import { oneOf } from '../container/level';
import { undoLostPlanner } from './planner-lost';

// The build's code cache warm-up reaches it through the bundle's exports.
export { warmUp } from './warm-up';

const VERSION = '0.1.0';

const CGROUP_COMMANDS = new Set(['create', 'run', 'exec', 'update', 'do']);

const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { name: 'root', type: 'string' },
  { name: 'log', type: 'string' },
  { name: 'log-format', type: 'string' },
  { name: 'debug', type: 'bool' },
  { name: 'systemd-cgroup', type: 'bool' },
  { name: 'isolation', type: 'string' },
  { name: 'criu', type: 'string', ignored: true },
  { name: 'rootless', type: 'string', ignored: true },
  { name: 'help', type: 'bool', short: 'h' },
  { name: 'version', type: 'bool', short: 'v' },
];

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, load]) => `   ${name.padEnd(10)}${load().summary}`);
  return `stockade ${VERSION}: an OCI container runtime with a choice of wall\n\nUSAGE: stockade [global options] command [command options] [arguments...]\n       stockade help COMMAND   (or stockade COMMAND --help): every option of COMMAND, with an example\n\nCOMMANDS:\n${lines.join('\n')}\n\nGLOBAL OPTIONS:\n   --root DIR          state directory (default ${DEFAULT_ROOT})\n   --log FILE          log file\n   --log-format FMT    text or json\n   --debug             log debug messages\n   --isolation LEVEL   ${oneOf(availableLevels())} (a config's dev.stockade.isolation annotation overrides it)\n   --systemd-cgroup    place containers with systemd (needs systemd)\n\nLEVELS:\n${levelLines()}`;
}

/** A line per level of the registry: its wall, and why this build cannot run it where it cannot. */
function levelLines(): string {
  const width = Math.max(...LEVELS.map((l) => l.name.length)) + 2;
  return LEVELS.map((l) => `   ${l.name.padEnd(width)}${l.help}${l.unavailable === undefined ? '' : ` (not available yet: ${l.unavailable})`}\n`).join('');
}

/** Splits global flags (before the command name) from the command and its arguments. */
export function splitGlobal(argv: readonly string[]): { global: string[]; command: string | undefined; rest: string[] } {
  const global: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i] ?? '';
    if (!a.startsWith('-')) break;
    global.push(a);
    const name = a.replace(/^--?/, '').split('=')[0] ?? '';
    const spec = GLOBAL_FLAGS.find((f) => f.name === name || f.short === name);
    i++;
    if (spec !== undefined && spec.type !== 'bool' && !a.includes('=') && i < argv.length) {
      global.push(argv[i] ?? '');
      i++;
    }
  }
  return { global, command: argv[i], rest: argv.slice(i + 1) };
}

export async function main(given: readonly string[]): Promise<number> {
  mark('main');
  // bin/stockade and the light entry start `node stockade.js -- ARGS`: Node 20 takes an
  // --env-file anywhere on its command line for its own unless a `--` comes first.
  const argv = given[0] === '--' ? given.slice(1) : given;
  let log = new Logger(undefined, 'text', false);
  try {
    const { global, command, rest } = splitGlobal(argv);
    const g = parseArgs(global, GLOBAL_FLAGS, 'stockade');
    const format = str(g, 'log-format') ?? 'text';
    const valid = format === 'text' || format === 'json';
    // Even a bad --log-format gets its error into the log file, in text.
    const logPath = str(g, 'log');
    log = new Logger(logPath, valid ? (format as LogFormat) : 'text', bool(g, 'debug'));
    if (logPath !== undefined) openLogFile(logPath);
    if (!valid) throw new StockadeError('USAGE', `--log-format must be text or json, not ${JSON.stringify(format)}`);
    if (bool(g, 'version')) {
      out(`stockade version ${VERSION}\nspec: 1.3.0\n`);
      return 0;
    }
    // `stockade help CMD` is `stockade CMD --help`.
    const about = command === 'help' ? rest[0] : undefined;
    if (about !== undefined) {
      const load = COMMANDS[about];
      if (load === undefined) throw new StockadeError('USAGE', `help: unknown command ${JSON.stringify(about)} (see stockade --help)`);
      out(`${helpOf(about, load())}\n`);
      return 0;
    }
    if (command === undefined || bool(g, 'help') || command === 'help') {
      out(usage());
      return command === undefined && !bool(g, 'help') ? 1 : 0;
    }
    const load = COMMANDS[command];
    if (load === undefined) throw new StockadeError('USAGE', `unknown command ${JSON.stringify(command)} (see stockade --help)`);
    const cmd = load();
    mark('loaded');
    // Only the command's own flags: what follows `--` belongs to the program `do` runs.
    const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
    if (own.includes('--help') || own.includes('-h')) {
      out(`${helpOf(command, cmd)}\n`);
      return 0;
    }
    // Only commands that place processes in cgroups need systemd; state, kill, delete still work.
    if (bool(g, 'systemd-cgroup') && CGROUP_COMMANDS.has(command) && !isSystemdRunning()) {
      throw new StockadeError('UNSUPPORTED', '--systemd-cgroup needs systemd, which is not running on this host (/run/systemd/system is missing)');
    }
    const isolation = str(g, 'isolation') ?? DEFAULT_LEVEL;
    const level = levelEntry(isolation);
    if (level === undefined) {
      throw new StockadeError('USAGE', `--isolation must be one of ${levelNames().join(', ')}, not ${JSON.stringify(isolation)}`);
    }
    if (level.unavailable !== undefined) throw new StockadeError('UNSUPPORTED', `--isolation ${isolation} is not available yet: ${level.unavailable}`);
    log.debug(`stockade ${withoutEnvValues(argv).join(' ')}`);
    // runc takes a relative --root against the cwd; every path made from it must be absolute.
    const store = new StateStore(resolve(str(g, 'root') ?? DEFAULT_ROOT));
    const levels = levelRegistry({ log, root: store.root }, isolation);
    await undoLostPlanner(store, levels, { imageRun: command === 'run' && own.some((a) => a === '--image' || a.startsWith('--image=')) });
    return await cmd.run(rest, { store, log, systemdCgroup: bool(g, 'systemd-cgroup'), isolation, levels });
  } catch (e) {
    const msg = oneLine(e instanceof Error ? e.message : String(e));
    const fields = isStockadeError(e) ? { code: e.code, ...e.context } : {};
    log.log('error', msg, fields);
    if (!isStockadeError(e) && e instanceof Error && e.stack !== undefined) log.debug(e.stack);
    err(`stockade: ${msg}\n`);
    return exitStatusOf(e);
  }
}

/**
 * Opens (and makes) the --log file before anything else, as runc does: a log that cannot be
 * written is refused at once, rather than the call going ahead with its record lost.
 */
function openLogFile(path: string): void {
  try {
    closeSync(openSync(path, 'a', 0o644));
  } catch (e) {
    const errno = errnoCode(e);
    const why = errno === 'ENOTDIR' ? 'a parent is not a directory'
      : errno === 'ENOENT' ? 'its directory does not exist'
      : errno === 'EISDIR' ? 'it is a directory'
      : errno === 'EACCES' ? 'permission denied'
      : errno ?? String(e);
    throw new StockadeError('USAGE', `--log ${path}: cannot be opened: ${why}`, { path });
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ');
}

/** A command's whole help: its entry in help.ts, else (do) the usage it carries itself. */
function helpOf(name: string, cmd: Command): string {
  return HELP[name] ?? cmd.usage;
}

function isSystemdRunning(): boolean {
  return (require('node:fs') as typeof import('node:fs')).existsSync('/run/systemd/system');
}

if (require.main === module) {
  // Exit as soon as the command is done: its output is written synchronously (out(), the log), and
  // a natural exit would first tear the whole heap down, several ms of every call.
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}

/**
 * The command line as the --log file may keep it: the values of -e/--env (do, exec) replaced,
 * since they are the secrets a caller hands a sandbox (API tokens) and the log outlives it.
 * Only the flags before `--`: what follows is the sandboxed program's.
 */
export function withoutEnvValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  let flags = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--') flags = false;
    const m = flags ? /^(-e|--env)(=?)(.*)$/.exec(a) : null;
    if (m === null) {
      out.push(a);
    } else if (m[2] === '=' || (m[1] === '-e' && m[3] !== '')) {
      out.push(`${m[1]}${m[2]}${redact(m[3] ?? '')}`);
    } else {
      out.push(a, redact(argv[i + 1] ?? ''));
      i++;
    }
  }
  return out;
}

function redact(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : `${entry.slice(0, eq)}=...`;
}
