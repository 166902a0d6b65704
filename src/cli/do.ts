// stockade do [--rw] [--network none|host] [--allow-net DEST]... [--cwd DIR] [--env K=V] -- CMD ARGS: a host command in a sandbox.
import { randomBytes } from 'node:crypto';
import { doSpec } from '../container/do-spec';
import { parseContainerId } from '../container/id';
import { runContainer } from '../container/run';
import { lightGlobals } from '../container/light-wait';
import { isolationLevels } from './isolation';
import { StockadeError } from '../errors';
import { bool, list, parseArgs, str } from './args';
import type { Command } from './context';
import { NETWORK_ANNOTATION } from '../container/supervisor';
import { parseNetPolicy } from '../sentry/net-policy';

export const command: Command = {
  summary: 'run a host command in a sandbox: host root read-only, writes in memory',
  usage: 'stockade do [--isolation namespaces|sentry] [--rw] [--network none|host] [--allow-net DEST]... [--cwd DIR] [--env K=V]... -- CMD [ARGS...]',
  async run(argv, ctx) {
    const p = parseArgs(argv, [
      { name: 'rw', type: 'bool' },
      { name: 'network', type: 'string' },
      { name: 'allow-net', type: 'list' },
      { name: 'cwd', type: 'string' },
      { name: 'env', type: 'list', short: 'e' },
      { name: 'isolation', type: 'string' },
    ], 'do', { stopAfterPositionals: 1 });
    const allowNet = list(p, 'allow-net');
    // Only the sentry can keep an allow list: --allow-net asks for it unless --isolation says otherwise.
    const isolation = str(p, 'isolation') ?? (allowNet.length > 0 ? 'sentry' : ctx.isolation);
    if (isolation !== 'namespaces' && isolation !== 'sentry') {
      throw new StockadeError('USAGE', `do: --isolation must be namespaces or sentry, not ${JSON.stringify(isolation)}`);
    }
    if (p.positional.length === 0) throw new StockadeError('USAGE', 'do: expects a command after --');
    // --allow-net reaches its destinations from the host's network; without it, a network of the
    // sandbox's own (loopback only). `--network host` alone reaches everything the host does.
    const network = str(p, 'network') ?? (allowNet.length > 0 ? 'host' : 'none');
    if (network !== 'none' && network !== 'host') throw new StockadeError('USAGE', `do: --network must be none or host, not ${JSON.stringify(network)}`);
    const policy = allowNetPolicy(allowNet, network, isolation);
    const env = mergeEnv(hostEnv(), list(p, 'env'));
    const id = parseContainerId(`do-${process.pid}-${randomBytes(4).toString('hex')}`);
    const spec = doSpec({
      args: p.positional,
      env,
      cwd: str(p, 'cwd') ?? process.cwd(),
      network,
      rw: bool(p, 'rw'),
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
    });
    if (policy !== undefined) spec.annotations = { ...spec.annotations, [NETWORK_ANNOTATION]: policy };
    return runContainer({
      levels: isolationLevels(ctx, isolation),
      store: ctx.store,
      id,
      bundle: '/',
      spec,
      rootfsMode: bool(p, 'rw') ? 'overlay' : 'recursive-readonly',
      detach: false,
      keep: false,
      debug: (m) => ctx.log.debug(m),
      lightGlobals: lightGlobals(ctx.store.root, ctx.log.file),
    });
  },
};

/**
 * The sentry's network policy for --allow-net's destinations (HOST[:PORT], CIDR[:PORT], N, N-M,
 * dns=ADDR), each checked here; undefined without any.
 */
function allowNetPolicy(dests: readonly string[], network: string, isolation: string): string | undefined {
  if (dests.length === 0) return undefined;
  if (isolation !== 'sentry') throw new StockadeError('USAGE', 'do: --allow-net needs --isolation sentry (the namespaces level has no network policy)');
  if (network !== 'host') throw new StockadeError('USAGE', 'do: --allow-net with --network none reaches nothing but loopback: leave --network out, or give host');
  const items = dests.flatMap((d) => d.split(',')).filter((d) => d !== '');
  parseNetPolicy(items.join(','), 'do: --allow-net');
  return items.join(',');
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
