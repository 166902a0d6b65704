// stockade state ID: the OCI state as indented JSON.
import { parseContainerId } from '../container/id';
import { containerState } from '../container/query';
import { parseArgs } from './args';
import type { Command } from './context';
import { singleId } from './create';
import { out } from '../log/logger';

export const command: Command = {
  summary: 'print the state of a container',
  usage: 'stockade state ID',
  async run(argv, ctx) {
    const p = parseArgs(argv, [], 'state');
    const state = await containerState(ctx.store, ctx.levels, parseContainerId(singleId(p.positional, 'state')));
    out(`${JSON.stringify(state, null, 2)}\n`);
    return 0;
  },
};
