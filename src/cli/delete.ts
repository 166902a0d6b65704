// stockade delete [--force] ID...
import { deleteContainer } from '../container/delete';
import { parseContainerId } from '../container/id';
import { StockadeError, isStockadeError } from '../errors';
import { bool, parseArgs } from './args';
import type { Command } from './context';

export const command: Command = {
  summary: 'delete a container and its state',
  usage: 'stockade delete [--force] ID',
  async run(argv, ctx) {
    const p = parseArgs(argv, [{ name: 'force', type: 'bool', short: 'f' }], 'delete');
    if (p.positional.length === 0) throw new StockadeError('USAGE', 'delete: expects a container id');
    for (const raw of p.positional) {
      const id = parseContainerId(raw);
      try {
        await deleteContainer(ctx.store, ctx.levels, id, bool(p, 'force'), { warn: (m) => ctx.log.warn(m) });
      } catch (e) {
        // As runc: a forced delete of a container that is already gone succeeds, so clients can retry.
        if (!(bool(p, 'force') && isStockadeError(e) && e.code === 'CONTAINER_NOT_FOUND')) throw e;
        ctx.store.remove(id);
      }
    }
    return 0;
  },
};
