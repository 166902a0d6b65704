// stockade kill [--all] ID [SIGNAL]
import { parseContainerId } from '../container/id';
import { killContainer } from '../container/kill';
import { parseSignal } from '../container/signals';
import { StockadeError } from '../errors';
import { bool, parseArgs } from './args';
import type { Command } from './context';

export const command: Command = {
  summary: 'send a signal to a container',
  usage: 'stockade kill [--all] ID [SIGNAL]',
  async run(argv, ctx) {
    const p = parseArgs(argv, [{ name: 'all', type: 'bool', short: 'a' }], 'kill');
    if (p.positional.length < 1 || p.positional.length > 2) throw new StockadeError('USAGE', 'kill: expects a container id and an optional signal');
    const id = parseContainerId(p.positional[0]);
    const signal = parseSignal(p.positional[1] ?? 'SIGTERM', { zero: true });
    await killContainer(ctx.store, ctx.levels, id, signal, bool(p, 'all'));
    return 0;
  },
};
