// stockade start ID
import { parseContainerId } from '../container/id';
import { startContainer } from '../container/start';
import { parseArgs } from './args';
import type { Command } from './context';
import { singleId } from './create';

export const command: Command = {
  summary: 'start a created container',
  usage: 'stockade start ID',
  async run(argv, ctx) {
    const p = parseArgs(argv, [], 'start');
    await startContainer(ctx.store, parseContainerId(singleId(p.positional, 'start')), { warn: (m) => ctx.log.warn(m) });
    return 0;
  },
};
