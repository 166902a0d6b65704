// stockade vm-template [--memory MIB] [--cpus N] [--json]: builds the vm level's template for a
// guest of that size (or finds it in the cache), so that the first vm container need not.
// stockade vm-template --prune [--json]: removes the templates this host would no longer restore
// and no VM runs from (a build does the same after it), after ending the state root's pool of
// warmed VMs (src/vm/pool.ts).
import { StockadeError } from '../errors';
import { out } from '../log/logger';
import { bool, int, parseArgs } from './args';
import type { Command } from './context';

export const command: Command = {
  summary: 'build the vm level\'s template for a guest size (done on first need otherwise)',
  usage: 'stockade vm-template [--memory MIB] [--cpus N] [--json] | --prune [--json]',
  async run(argv, ctx) {
    const p = parseArgs(argv, [{ name: 'memory', type: 'int' }, { name: 'cpus', type: 'int' }, { name: 'json', type: 'bool' }, { name: 'prune', type: 'bool' }], 'vm-template');
    if (p.positional.length > 0) throw new StockadeError('USAGE', `vm-template: unexpected argument ${JSON.stringify(p.positional[0])}`);
    if (bool(p, 'prune')) {
      if (p.flags.has('memory') || p.flags.has('cpus')) throw new StockadeError('USAGE', 'vm-template: --prune takes no --memory or --cpus (it looks at every template)');
      const { pruneTemplates } = require('../vm/template') as typeof import('../vm/template');
      // The state root's pool first: its waiting VMs are clones of templates the prune may remove.
      const { endPool } = require('../vm/pool') as typeof import('../vm/pool');
      const pool = endPool(ctx.store.root);
      const r = { ...(await pruneTemplates({ debug: (l) => ctx.log.debug(l) })), poolEnded: pool };
      if (bool(p, 'json')) out(`${JSON.stringify(r)}\n`);
      else {
        if (pool > 0) out(`ended ${pool} pool VM(s) of ${ctx.store.root}\n`);
        for (const k of r.removed) out(`removed ${k}\n`);
        for (const u of r.inUse) out(`kept ${u.key}: old, but VMs run from it (pids ${u.pids.join(', ')})\n`);
      }
      return 0;
    }
    const memoryMiB = int(p, 'memory', 256);
    const cpus = int(p, 'cpus', 1);
    const { buildTemplate } = require('../vm/template') as typeof import('../vm/template');
    const t0 = Date.now();
    const t = await buildTemplate({ memoryMiB, cpus, debug: (l) => ctx.log.debug(l) });
    const summary = {
      key: t.key, dir: t.dir, built: t.built, memoryMiB: t.memoryMiB, cpus: t.cpus, kernel: t.assets.release,
      ms: Date.now() - t0, buildMs: t.manifest.buildMs,
    };
    if (bool(p, 'json')) out(`${JSON.stringify(summary)}\n`);
    else out(`${t.built ? 'built' : 'cached'} ${t.key} (${t.memoryMiB} MiB, ${t.cpus} vCPU, kernel ${t.assets.release}) in ${t.dir}\n`);
    return 0;
  },
};
