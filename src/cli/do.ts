// stockade do [--rw] [--show PATH] [--hide PATH] [--network none|host] [--allow-net DEST]... [--cwd DIR] [--bind SRC[:DST][:ro|:rw]] [--tmpfs DST] [--env K=V] [--env-file F] [--user UID[:GID]] [--memory N] [--pids N] [--cpus N] [--timeout D] -- CMD ARGS: a host command in a sandbox.
import { closeSync, openSync, readFileSync, readSync, realpathSync } from 'node:fs';
import { DO_DEFAULT_LIMITS, DO_FRESH, DO_MAX_TMPFS, DO_MIN_MEMORY, doBind, doSpec, doTmpfs, doTmpfsSizes, doWorkingDirectory, type DoLimits } from '../container/do-spec';
import { canReach, doBindIdmap, doIdentity } from '../container/do-identity';
import { checkHiddenChoice, existingHidden, homeDirectories, maskedForDo } from '../container/do-hidden';
import type { MountIdmap } from '../container/plan';
import { sweepAbandoned } from '../container/do-sweep';
import { parseContainerId } from '../container/id';
import { runContainer } from '../container/run';
import { lightGlobals } from '../container/light-wait';
import { availableLevels, DEFAULT_LEVEL, levelEntry, levelRegistry, LEVELS } from '../levels/registry';
import { StockadeError } from '../errors';
import { bool, list, parseArgs, str, type FlagSpec, type Parsed } from './args';
import type { Command } from './context';
import { parseDuration, parseMemory } from './units';
import { NETWORK_ANNOTATION, oneOf } from '../container/level';
import { parseNetPolicy } from '../sentry/net-policy';
import { mark } from '../log/timing';
import { err } from '../log/logger';
import { callerIsTTY, callerPid } from '../container/caller';

/** The levels that keep a network policy, as the registry lists them: --allow-net asks for the first. */
const POLICY_LEVELS = LEVELS.filter((l) => l.networkPolicy && l.unavailable === undefined).map((l) => l.name);
const POLICY_LEVEL = POLICY_LEVELS[0] ?? '';

const USAGE = `stockade do [OPTIONS] -- CMD [ARGS...]

Runs CMD in a sandbox: the host's root file system read-only (nosuid, nodev, all the way down),
fresh /proc, /sys, /dev, and /tmp, /var/tmp, /run in memory, its own pid, mount, ipc, uts, cgroup
and network namespaces, no_new_privs, an init in front of CMD. Stdio passes through; signals sent
to stockade reach CMD; the exit status is CMD's (128+N if signal N killed it). Killing stockade
ends the sandbox.

CMD is not root on the host: it runs as the user who ran sudo (SUDO_UID, SUDO_GID), else as the
caller when that is not root, else as nobody (65534:65534), with no capabilities and HOME that
user's. What only root may read (/etc/shadow, /root) it cannot read. In every home directory
(/root, /home/*) the places credentials and histories are kept are hidden, as an empty read-only
directory or an empty file: ~/.ssh ~/.gnupg ~/.password-store ~/.local/share/keyrings ~/.pki
~/.aws ~/.config/gcloud ~/.azure ~/.kube ~/.oci ~/.config/doctl ~/.vault-token
~/.terraform.d/credentials.tfrc.json ~/.docker/config.json ~/.netrc ~/.git-credentials
~/.config/git/credentials ~/.config/gh ~/.config/hub ~/.npmrc ~/.pypirc ~/.cargo/credentials[.toml]
~/.gem/credentials and shell, python, node, psql, mysql, sqlite, redis and less histories.

Options:
  --isolation ${availableLevels().join('|')}  the wall (default: the global --isolation, else ${DEFAULT_LEVEL})
  -t, --tty            give CMD a terminal of its own (the default when stdin is a terminal),
                       relayed raw: window size, ^C and ^Z to its foreground job
  -T, --no-tty         no terminal: stdio passed as it is
  --rw                 writes succeed wherever CMD's user may write, into memory, and vanish at
                       the end (root's directories stay closed to it: --user 0 opens them, and
                       with them everything root reads)
  --show PATH          show a hidden credential location (or every one below a directory:
                       --show ~/.aws, --show /home/alice)
  --hide PATH          hide a file or directory too (an empty read-only one over it)
  --network none|host  none (default): loopback only; host: the host's network
  --allow-net DEST     at --isolation ${POLICY_LEVEL} (the default with it), reach DEST from the host's
                       network and nothing else: HOST[:PORT], CIDR[:PORT], N, N-M, dns=ADDR
  --cwd DIR            where CMD starts (default: the current directory); resolved on the host,
                       it must be a directory the sandbox shows as the host has it (not under
                       /tmp, /var/tmp, /run, /proc, /sys or /dev, which are the sandbox's own,
                       unless a --bind of it, or of a directory above it, shares it there)
  --bind SRC[:DST][:ro|:rw]
                       share a host path, at DST (default: SRC's own path), read-only (default;
                       every mount below it too) or writable (:rw, that file system only, nosuid,
                       nodev). SRC is resolved on the host (symlinks, ..); not /proc, /sys, /dev
                       or stockade's state. --bind .:rw lets a build write the current directory:
                       what CMD writes there is the caller's (root's, started by root as nobody),
                       and so is what the caller owns there (never made setuid or setgid by
                       CMD). Read-only, CMD reads with its own
                       rights. The hidden locations stay hidden inside a bind too
  --tmpfs DST          a fresh, writable in-memory directory at DST (sized from --memory, with
                       the others); DST must exist, or lie under /tmp, or --rw
  -e, --env K=V        set a variable (the caller's environment is passed on otherwise)
  --env-file FILE      KEY=VALUE lines (# comments; a bare KEY takes the caller's value); --env
                       entries win over them
  -u, --user UID[:GID] run CMD as this host uid (and gid: default the uid's group in /etc/passwd,
                       else the uid's own number), with no capabilities; 0 runs it as root, with
                       root's reads and CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE
  --memory SIZE        memory limit, tmpfs contents included (default 2g; at least 32m). The
                       in-memory file systems are sized from it: /tmp 1/4, /var/tmp 1/8, /run 1/16,
                       /dev/shm 1/16 (at most 64m), /dev 1/32 (at most 64m), --rw's writes 1/4
  --pids N             processes and threads at most (default 1024)
  --cpus N             CPU time, in CPUs (e.g. 0.5, 2); default: no limit
  --timeout DURATION   end CMD after DURATION (30s, 5m, 1h30m, or seconds): SIGTERM, then 5 s
                       later SIGKILL to everything left; the exit status is then 124, as
                       timeout(1) gives. Default: none

Examples:
  stockade do --memory 512m --pids 200 -- sh -c 'echo hello from $(hostname)'
  stockade do --bind .:rw -- make        # the build writes the current directory, nothing else
  sudo stockade do --show ~/.aws -- aws s3 ls   # as you, with your AWS credentials only`;

/** do's own options (src/planner/eligible.ts reads them too, to find the level before serving a do). */
export const DO_FLAGS: readonly FlagSpec[] = [
  { name: 'rw', type: 'bool' },
  { name: 'network', type: 'string' },
  { name: 'allow-net', type: 'list' },
  { name: 'cwd', type: 'string' },
  { name: 'env', type: 'list', short: 'e' },
  { name: 'isolation', type: 'string' },
  { name: 'memory', type: 'string' },
  { name: 'pids', type: 'string' },
  { name: 'cpus', type: 'string' },
  { name: 'bind', type: 'list' },
  { name: 'timeout', type: 'string' },
  { name: 'tmpfs', type: 'list' },
  { name: 'env-file', type: 'list' },
  { name: 'user', type: 'string', short: 'u' },
  { name: 'tty', type: 'bool', short: 't' },
  { name: 'no-tty', type: 'bool', short: 'T' },
  { name: 'show', type: 'list' },
  { name: 'hide', type: 'list' },
];
export const DO_PARSE = { stopAfterPositionals: 1 } as const;

/** The level a do runs at: its --isolation, else the policy level --allow-net needs, else the global one. */
export function doIsolation(p: Parsed, globalIsolation: string): string {
  // Only a level with a network policy can keep an allow list: --allow-net asks for one unless --isolation says otherwise.
  return str(p, 'isolation') ?? (list(p, 'allow-net').length > 0 ? POLICY_LEVEL : globalIsolation);
}

export const command: Command = {
  summary: 'run a host command in a sandbox: host root read-only, writes in memory',
  usage: USAGE,
  async run(argv, ctx) {
    const p = parseArgs(argv, DO_FLAGS, 'do', DO_PARSE);
    const allowNet = list(p, 'allow-net');
    const isolation = doIsolation(p, ctx.isolation);
    const level = levelEntry(isolation);
    if (level === undefined || level.unavailable !== undefined) {
      throw new StockadeError('USAGE', `do: --isolation must be ${oneOf(availableLevels())}, not ${JSON.stringify(isolation)}`);
    }
    if (p.positional.length === 0) throw new StockadeError('USAGE', 'do: expects a command after --');
    // --allow-net reaches its destinations from the host's network; without it, a network of the
    // sandbox's own (loopback only). `--network host` alone reaches everything the host does.
    const network = str(p, 'network') ?? (allowNet.length > 0 ? 'host' : 'none');
    if (network !== 'none' && network !== 'host') throw new StockadeError('USAGE', `do: --network must be none or host, not ${JSON.stringify(network)}`);
    const policy = allowNetPolicy(allowNet, network, isolation, level.networkPolicy);
    const limits = doLimits(str(p, 'memory'), str(p, 'pids'), str(p, 'cpus'));
    const timeout = doTimeout(str(p, 'timeout'));
    const identity = doIdentity(doUser(str(p, 'user')));
    const fileEnv = list(p, 'env-file').flatMap(readEnvFile);
    const given = [...fileEnv, ...list(p, 'env')];
    // The caller's HOME is not the command's when the command is someone else (root's /root,
    // which nobody may not enter): the user's own, unless --env or --env-file name one.
    const home = identity.uid !== (process.getuid?.() ?? 0) && !given.some((e) => e.startsWith('HOME=')) ? [`HOME=${homeOf(identity.uid)}`] : [];
    const env = mergeEnv([...hostEnv(), ...home, ...fileEnv], list(p, 'env'));
    mark('do: parsed');
    ctx.store.ensureRoot();
    // The state root, as the host resolves it, is hidden from the command: other containers' state lives there.
    const stateRoot = realpathSync(ctx.store.root);
    const binds = list(p, 'bind').map((b) => doBind(b, process.cwd(), [stateRoot], bool(p, 'rw')));
    const tmpfs = list(p, 'tmpfs').map((t) => doTmpfs(t, [stateRoot], bool(p, 'rw')));
    if (tmpfs.length > DO_MAX_TMPFS) throw new StockadeError('USAGE', `do: at most ${DO_MAX_TMPFS} --tmpfs (they share the memory limit)`, { flag: 'tmpfs' });
    // A writable bind is written with the caller's ownership where the command's ids are not the caller's.
    const bindIdmap = doBindIdmap(identity);
    const idmaps = new Map<string, MountIdmap>();
    if (bindIdmap !== undefined) for (const b of binds) if (b.writable) idmaps.set(b.destination, bindIdmap);
    const mapped = binds.filter((b) => idmaps.has(b.destination) && b.source === b.destination).map((b) => b.source);
    const cwd = doWorkingDirectory(str(p, 'cwd'), process.cwd(), [stateRoot], binds, (why) => {
      ctx.log.debug(`do: ${why}`);
      // Said at a terminal, where a person wonders why `ls` lists /; a script's stderr stays the command's.
      if (callerIsTTY(2)) err(`stockade: do: ${why}\n`);
    }, { canEnter: (dir) => canReach(dir, identity, mapped), who: `uid ${identity.uid}` });
    mark('do: binds and cwd');
    const homes = homeDirectories();
    const fresh = [...DO_FRESH, stateRoot];
    const choice = checkHiddenChoice(list(p, 'show'), list(p, 'hide'), process.cwd(), homes, DO_FRESH);
    const masked = maskedForDo(existingHidden(homes), choice, binds, fresh);
    mark('do: hidden');
    // What a `do` killed before it could clean up left behind: its own call is the next one.
    const levels = levelRegistry({ log: ctx.log, root: ctx.store.root }, isolation);
    await sweepAbandoned(ctx.store, levels, (m) => ctx.log.debug(m));
    mark('do: swept');
    // The caller's pid: this process's, or the planner's front's (which stockade-init is a child of).
    const id = parseContainerId(`do-${callerPid()}-${randomHex(4)}`);
    const spec = doSpec({
      args: p.positional,
      env,
      cwd,
      network,
      rw: bool(p, 'rw'),
      uid: identity.uid,
      gid: identity.gid,
      limits,
      hidden: [stateRoot],
      binds,
      tmpfs,
      // As docker -t and ssh: a terminal when asked, else when stdin is one; -T never.
      terminal: bool(p, 'tty') || (!bool(p, 'no-tty') && callerIsTTY(0)),
      masked,
      noSetid: idmaps.size > 0,
    });
    if (policy !== undefined) spec.annotations = { ...spec.annotations, [NETWORK_ANNOTATION]: policy };
    return runContainer({
      levels,
      store: ctx.store,
      id,
      bundle: '/',
      spec,
      rootfsMode: bool(p, 'rw') ? 'overlay' : 'recursive-readonly',
      detach: false,
      keep: false,
      debug: (m) => ctx.log.debug(m),
      lightGlobals: lightGlobals(ctx.store.root, ctx.log.file),
      sandbox: { init: true, tiedTo: callerPid(), envOnDisk: false, overlayTmpfs: doTmpfsSizes(limits.memory).overlay, timeout, idmaps, resolvedBinds: true },
    });
  },
};

/**
 * `bytes` random bytes in hex, read from /dev/urandom: node:crypto's randomBytes would load the
 * whole crypto module, some milliseconds of every do, for four bytes.
 */
function randomHex(bytes: number): string {
  const buf = Buffer.alloc(bytes);
  const fd = openSync('/dev/urandom', 'r');
  try {
    readSync(fd, buf);
  } finally {
    closeSync(fd);
  }
  return buf.toString('hex');
}

/**
 * The sentry's network policy for --allow-net's destinations (HOST[:PORT], CIDR[:PORT], N, N-M,
 * dns=ADDR), each checked here; undefined without any.
 */
function allowNetPolicy(dests: readonly string[], network: string, isolation: string, keepsPolicy: boolean): string | undefined {
  if (dests.length === 0) return undefined;
  if (!keepsPolicy) throw new StockadeError('USAGE', `do: --allow-net needs --isolation ${oneOf(POLICY_LEVELS)} (the ${isolation} level has no network policy)`);
  if (network !== 'host') throw new StockadeError('USAGE', 'do: --allow-net with --network none reaches nothing but loopback: leave --network out, or give host');
  const items = dests.flatMap((d) => d.split(',')).filter((d) => d !== '');
  parseNetPolicy(items.join(','), 'do: --allow-net');
  return items.join(',');
}

/** After --timeout, the command has this long to end on SIGTERM before everything is killed. */
export const DO_TIMEOUT_GRACE_MS = 5000;

/** --timeout DURATION (5s, 1m30s, 500ms, or seconds as a plain number, as timeout(1) takes them). */
export function doTimeout(value: string | undefined): { timeoutMs: number; graceMs: number } | undefined {
  if (value === undefined) return undefined;
  let ms = NaN;
  try {
    ms = /^\d+(?:\.\d+)?$/.test(value) ? Number(value) * 1000 : parseDuration(value, 'timeout');
  } catch { /* worded below */ }
  if (!(ms >= 1 && ms <= 0xffffffff)) {
    throw new StockadeError('USAGE', `do: --timeout ${JSON.stringify(value)}: a duration from 1ms to 49 days (e.g. 30s, 5m, 1h, or seconds)`, { flag: 'timeout' });
  }
  return { timeoutMs: Math.ceil(ms), graceMs: DO_TIMEOUT_GRACE_MS };
}

/** --memory, --pids and --cpus over the defaults, each checked. */
export function doLimits(memory: string | undefined, pids: string | undefined, cpus: string | undefined): DoLimits {
  const limits: DoLimits = { ...DO_DEFAULT_LIMITS };
  if (memory !== undefined) {
    let bytes = NaN;
    try {
      if (memory !== '-1') bytes = parseMemory(memory, 'memory');
    } catch { /* worded below */ }
    if (!(bytes >= DO_MIN_MEMORY)) throw new StockadeError('USAGE', `do: --memory ${JSON.stringify(memory)}: a size of at least 32m (e.g. 512m, 2g): the tmpfs mounts are sized from it`, { flag: 'memory' });
    limits.memory = bytes;
  }
  if (pids !== undefined) {
    if (!/^\d+$/.test(pids) || Number(pids) < 1 || Number(pids) > 4_194_304) {
      throw new StockadeError('USAGE', `do: --pids ${JSON.stringify(pids)}: a whole number from 1 to 4194304`, { flag: 'pids' });
    }
    limits.pids = Number(pids);
  }
  if (cpus !== undefined) {
    const n = /^\d+(?:\.\d+)?$/.test(cpus) ? Number(cpus) : NaN;
    if (!(n >= 0.01 && n <= 1024)) throw new StockadeError('USAGE', `do: --cpus ${JSON.stringify(cpus)}: a number of CPUs from 0.01 (e.g. 0.5, 2)`, { flag: 'cpus' });
    limits.cpus = n;
  }
  return limits;
}

/**
 * --user UID[:GID], numbers only: the host's root file system is the container's, so its
 * /etc/passwd names the user's group when GID is left out; a uid it does not know gets its own
 * number as gid (never group 0, which opens root's group-readable files).
 */
export function doUser(value: string | undefined, passwd = '/etc/passwd'): { uid: number; gid: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(value);
  const uid = Number(m?.[1]);
  if (m === null || uid > 0xfffffffe || Number(m[2] ?? 0) > 0xfffffffe) {
    throw new StockadeError('USAGE', `do: --user ${JSON.stringify(value)}: expected UID[:GID], numbers (e.g. 1000 or 1000:1000)`, { flag: 'user' });
  }
  if (m[2] !== undefined) return { uid, gid: Number(m[2]) };
  let gid = uid;
  try {
    for (const line of readFileSync(passwd, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[2] === String(uid) && f[3] !== undefined && /^\d+$/.test(f[3])) { gid = Number(f[3]); break; }
    }
  } catch { /* no passwd: the uid's own number */ }
  return { uid, gid };
}

/** The home directory /etc/passwd gives `uid` (its first entry, as getpwuid), else "/". */
export function homeOf(uid: number, passwd = '/etc/passwd'): string {
  try {
    for (const line of readFileSync(passwd, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[2] === String(uid) && f[5] !== undefined && f[5] !== '') return f[5];
    }
  } catch { /* no passwd */ }
  return '/';
}

/** KEY=VALUE lines of an --env-file, as docker reads them: # comments and blank lines skipped, a bare KEY taken from this environment. */
export function readEnvFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new StockadeError('USAGE', `do: --env-file ${path}: ${(e as Error).message}`, { flag: 'env-file' });
  }
  const out: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line.trim() : line.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key)) {
      throw new StockadeError('USAGE', `do: --env-file ${path}: line ${i + 1}: ${JSON.stringify(key)} is not a variable name`, { flag: 'env-file' });
    }
    if (eq >= 0) out.push(line);
    else if (process.env[key] !== undefined) out.push(`${key}=${process.env[key] ?? ''}`);
  });
  return out;
}

const SAVED_CA = 'STOCKADE_SAVED_NODE_EXTRA_CA_CERTS';

/** The caller's environment as it was before bin/stockade moved NODE_EXTRA_CA_CERTS aside. */
function hostEnv(): string[] {
  return Object.entries(process.env).map(([k, v]) => (k === SAVED_CA ? `NODE_EXTRA_CA_CERTS=${v ?? ''}` : `${k}=${v ?? ''}`));
}

/** The host's environment with --env entries replacing or adding keys. */
export function mergeEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const map = new Map<string, string>();
  for (const e of [...base, ...overrides]) {
    const eq = e.indexOf('=');
    if (eq <= 0) throw new StockadeError('USAGE', `do: --env needs KEY=VALUE, not ${JSON.stringify(e)}`);
    map.set(e.slice(0, eq), e);
  }
  return [...map.values()];
}
