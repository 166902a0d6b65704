// stockade pause ID: freezes every process of a running container.
import { parseContainerId } from '../container/id';
import { pauseContainer } from '../container/pause';
import { StockadeError } from '../errors';
import { parseArgs } from './args';
import type { Command } from './context';

export const command: Command = {
  summary: 'pause all processes of a container',
  usage: 'stockade pause ID',
  async run(argv, ctx) {
    const p = parseArgs(argv, [], 'pause');
    if (p.positional.length !== 1) throw new StockadeError('USAGE', 'pause: expects exactly one container id');
    await pauseContainer(ctx.store, ctx.levels, parseContainerId(p.positional[0]));
    return 0;
  },
};
