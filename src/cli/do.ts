// stockade do [--rw] [--network none|host] [--cwd DIR] [--env K=V] -- CMD ARGS: a host command in a sandbox.
import { randomBytes } from 'node:crypto';
import { doSpec } from '../container/do-spec';
import { parseContainerId } from '../container/id';
import { runContainer } from '../container/run';
import { lightGlobals } from '../container/light-wait';
import { isolationLevels } from './isolation';
import { StockadeError } from '../errors';
import { bool, list, parseArgs, str } from './args';
import type { Command } from './context';

export const command: Command = {
  summary: 'run a host command in a sandbox: host root read-only, writes in memory',
  usage: 'stockade do [--isolation namespaces|sentry] [--rw] [--network none|host] [--cwd DIR] [--env K=V]... -- CMD [ARGS...]',
  async run(argv, ctx) {
    const p = parseArgs(argv, [
      { name: 'rw', type: 'bool' },
      { name: 'network', type: 'string' },
      { name: 'cwd', type: 'string' },
      { name: 'env', type: 'list', short: 'e' },
      { name: 'isolation', type: 'string' },
    ], 'do', { stopAfterPositionals: 1 });
    const isolation = str(p, 'isolation') ?? ctx.isolation;
    if (isolation !== 'namespaces' && isolation !== 'sentry') {
      throw new StockadeError('USAGE', `do: --isolation must be namespaces or sentry, not ${JSON.stringify(isolation)}`);
    }
    if (p.positional.length === 0) throw new StockadeError('USAGE', 'do: expects a command after --');
    const network = str(p, 'network') ?? 'none';
    if (network !== 'none' && network !== 'host') throw new StockadeError('USAGE', `do: --network must be none or host, not ${JSON.stringify(network)}`);
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
