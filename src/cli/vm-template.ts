// stockade vm-template [--memory MIB] [--cpus N] [--json]: builds the vm level's template for a
// guest of that size (or finds it in the cache), so that the first vm container need not.
import { StockadeError } from '../errors';
import { out } from '../log/logger';
import { bool, int, parseArgs } from './args';
import type { Command } from './context';

export const command: Command = {
  summary: 'build the vm level\'s template for a guest size (done on first need otherwise)',
  usage: 'stockade vm-template [--memory MIB] [--cpus N] [--json]',
  async run(argv, ctx) {
    const p = parseArgs(argv, [{ name: 'memory', type: 'int' }, { name: 'cpus', type: 'int' }, { name: 'json', type: 'bool' }], 'vm-template');
    if (p.positional.length > 0) throw new StockadeError('USAGE', `vm-template: unexpected argument ${JSON.stringify(p.positional[0])}`);
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
