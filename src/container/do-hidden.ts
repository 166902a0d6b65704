// What `stockade do` hides by default: where credentials and shell histories are kept in every home directory.
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { posix } from 'node:path';
import { StockadeError } from '../errors';
import type { DoBind } from './do-spec';

/**
 * Paths below a home directory that hold credentials or a record of what was typed. An empty
 * read-only directory, or an empty file, is put over each that exists (OCI maskedPaths).
 */
export const DO_HIDDEN_IN_HOME: readonly string[] = [
  // Keys and agents' sockets.
  '.ssh', '.gnupg', '.password-store', '.local/share/keyrings', '.pki',
  // Cloud and cluster credentials.
  '.aws', '.config/gcloud', '.azure', '.kube', '.oci', '.config/doctl', '.vault-token', '.terraform.d/credentials.tfrc.json',
  // Registries and forges.
  '.docker/config.json', '.netrc', '.git-credentials', '.config/git/credentials', '.config/gh', '.config/hub',
  '.npmrc', '.pypirc', '.cargo/credentials', '.cargo/credentials.toml', '.gem/credentials',
  // Shell and interpreter histories.
  '.bash_history', '.zsh_history', '.sh_history', '.history', '.histfile', '.local/share/fish/fish_history',
  '.python_history', '.node_repl_history', '.psql_history', '.mysql_history', '.sqlite_history', '.rediscli_history',
  '.lesshst',
];

/** /root and every directory in /home: the home directories `do` looks into. */
export function homeDirectories(): string[] {
  const homes = ['/root'];
  try {
    for (const e of readdirSync('/home', { withFileTypes: true })) if (e.isDirectory() || e.isSymbolicLink()) homes.push(`/home/${e.name}`);
  } catch { /* no /home */ }
  return homes;
}

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);
}

/** The path as the host resolves it; realpath(3) itself: Node's own walks each component in JavaScript, ten times slower. */
function real(path: string): string | undefined {
  try {
    return realpathSync.native(path);
  } catch {
    return undefined;
  }
}

/**
 * The default-hidden locations that exist, each as the host resolves it (a link's target: the
 * link itself leads there). A home is read once, so that only names it holds are looked up.
 */
export function existingHidden(homes: readonly string[]): string[] {
  const found = new Set<string>();
  for (const home of homes) {
    let names: Set<string>;
    try {
      names = new Set(readdirSync(home));
    } catch {
      continue;
    }
    for (const rel of DO_HIDDEN_IN_HOME) {
      if (!names.has(rel.split('/')[0] ?? '')) continue;
      // A name below one present (.config/gcloud in a home with .config) is mostly absent: looked
      // up without an exception first, which realpath's ENOENT costs (a stack captured for each).
      if (rel.includes('/') && !existsSync(`${home}/${rel}`)) continue;
      const path = real(`${home}/${rel}`);
      if (path !== undefined) found.add(path);
    }
  }
  return [...found];
}

/** Every default-hidden location, existing or not, as given (for --show to name). */
function candidates(homes: readonly string[]): string[] {
  return homes.flatMap((h) => DO_HIDDEN_IN_HOME.map((rel) => `${h}/${rel}`));
}

export interface HiddenChoice {
  /** --show PATH: hidden locations at or below it are shown. */
  show: readonly string[];
  /** --hide PATH: more to hide, each resolved on the host. */
  hide: readonly string[];
}

/**
 * --show and --hide, resolved against the caller's directory. A --show must name a default-hidden
 * location (existing or not) or a directory above one; a --hide must exist, outside the
 * directories the sandbox has of its own (`fresh`: nothing of the host is there to hide).
 */
export function checkHiddenChoice(show: readonly string[], hide: readonly string[], callerCwd: string, homes: readonly string[], fresh: readonly string[]): HiddenChoice {
  const all = candidates(homes);
  const shown = show.map((value) => {
    const path = posix.resolve(callerCwd, value);
    const resolved = real(path) ?? path;
    if (!all.some((c) => under(c, path) || under(c, resolved) || under(real(c) ?? c, resolved))) {
      throw new StockadeError('USAGE', `do: --show ${JSON.stringify(value)}: ${path} is not hidden: it names no credential location (stockade do --help lists them) nor a directory above one`, { flag: 'show' });
    }
    return resolved;
  });
  const hidden = hide.map((value) => {
    const path = real(posix.resolve(callerCwd, value));
    if (path === undefined) throw new StockadeError('USAGE', `do: --hide ${JSON.stringify(value)}: no such file or directory`, { flag: 'hide' });
    if (path === '/') throw new StockadeError('USAGE', `do: --hide ${JSON.stringify(value)}: the root cannot be hidden`, { flag: 'hide' });
    const own = fresh.find((d) => under(path, d));
    if (own !== undefined) throw new StockadeError('USAGE', `do: --hide ${JSON.stringify(value)}: ${own} is the sandbox's own: nothing of the host's is there to hide`, { flag: 'hide' });
    return path;
  });
  return { show: shown, hide: hidden };
}

/**
 * The container paths to mask: each hidden host path where the host's root shows it (not where a
 * bind or a fresh directory covers it), and where a --bind shows it again below its destination.
 * A bind of a default-hidden location itself shares it on purpose; a --hide is hidden there too.
 */
export function maskedForDo(defaults: readonly string[], choice: HiddenChoice, binds: readonly DoBind[], fresh: readonly string[]): string[] {
  const shown = (p: string): boolean => choice.show.some((s) => under(p, s));
  const entries = [
    ...defaults.filter((p) => !shown(p) && !choice.hide.includes(p)).map((path) => ({ path, explicit: false })),
    ...choice.hide.map((path) => ({ path, explicit: true })),
  ];
  const masks = new Set<string>();
  for (const { path, explicit } of entries) {
    const covered = fresh.some((d) => under(path, d)) || binds.some((b) => under(path, b.destination));
    if (!covered) masks.add(path);
    for (const b of binds) {
      if (!under(path, b.source) || (path === b.source && !explicit)) continue;
      masks.add(path === b.source ? b.destination : `${b.destination}${path.slice(b.source === '/' ? 0 : b.source.length)}`);
    }
  }
  return [...masks].sort();
}
