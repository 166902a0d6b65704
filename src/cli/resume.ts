// stockade resume ID: thaws a paused container.
import { parseContainerId } from '../container/id';
import { resumeContainer } from '../container/pause';
import { StockadeError } from '../errors';
import { parseArgs } from './args';
import type { Command } from './context';

export const command: Command = {
  summary: 'resume all processes of a paused container',
  usage: 'stockade resume ID',
  async run(argv, ctx) {
    const p = parseArgs(argv, [], 'resume');
    if (p.positional.length !== 1) throw new StockadeError('USAGE', 'resume: expects exactly one container id');
    await resumeContainer(ctx.store, ctx.levels, parseContainerId(p.positional[0]));
    return 0;
  },
};
