// stockade start ID
import { parseContainerId } from '../container/id';
import { startContainer } from '../container/start';
import { initError } from '../native/launcher';
import { MSG, decodeMessage } from '../native/protocol';
import { parseArgs } from './args';
import type { Command } from './context';
import { singleId } from './create';

export const command: Command = {
  summary: 'start a created container',
  usage: 'stockade start ID',
  async run(argv, ctx) {
    const p = parseArgs(argv, [], 'start');
    // The light entry released the container and the init answered with an error: word it here.
    const reply = process.env['STOCKADE_LIGHT_START_ERROR'];
    if (reply !== undefined) {
      delete process.env['STOCKADE_LIGHT_START_ERROR'];
      const m = decodeMessage(MSG.ERROR, Buffer.from(reply, 'hex'));
      if (m.type === 'error') throw initError(m);
    }
    await startContainer(ctx.store, ctx.levels, parseContainerId(singleId(p.positional, 'start')), { warn: (m) => ctx.log.warn(m) });
    return 0;
  },
};
