// stockade events [--stats] [--interval 5s] ID: container statistics and OOM kills as JSON lines, as runc prints them.
import { streamEvents, statsEvent } from '../container/events';
import { parseContainerId } from '../container/id';
import { StockadeError } from '../errors';
import { bool, parseArgs, str } from './args';
import type { Command } from './context';
import { out } from '../log/logger';
import { parseDuration } from './units';

export const command: Command = {
  summary: 'display container events such as OOM notifications and resource usage',
  usage: 'stockade events [--stats] [--interval 5s] ID',
  async run(argv, ctx) {
    const p = parseArgs(argv, [{ name: 'stats', type: 'bool' }, { name: 'interval', type: 'string' }], 'events');
    if (p.positional.length !== 1) throw new StockadeError('USAGE', 'events: expects exactly one container id');
    const id = parseContainerId(p.positional[0]);
    const interval = parseDuration(str(p, 'interval') ?? '5s', 'interval');
    if (interval <= 0) throw new StockadeError('USAGE', '--interval: must be positive', { flag: 'interval' });
    if (bool(p, 'stats')) {
      out(await statsEvent(ctx.store, ctx.levels, id));
      return 0;
    }
    await streamEvents(ctx.store, ctx.levels, id, interval, out);
    return 0;
  },
};
