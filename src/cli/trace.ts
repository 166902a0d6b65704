// stockade trace ID: every syscall the container's sentry serves, as JSON lines, until the container ends.
import { connect } from 'node:net';
import { join } from 'node:path';
import { parseContainerId } from '../container/id';
import { StockadeError } from '../errors';
import { parseArgs } from './args';
import type { Command } from './context';
import { singleId } from './create';
import { TRACE_SOCKET } from '../container/sentry-mounts';
import { LEVELS, levelEntry } from '../levels/registry';
import { oneOf } from '../container/level';

/** The levels whose workload's syscalls can be streamed. */
function traceLevels(): string[] {
  return LEVELS.filter((l) => l.trace).map((l) => l.name);
}

export const command: Command = {
  summary: 'stream the syscalls a sentry container makes, one JSON line each',
  usage: 'stockade trace ID',
  async run(argv, ctx) {
    const p = parseArgs(argv, [], 'trace');
    const id = parseContainerId(singleId(p.positional, 'trace'));
    const record = ctx.store.read(id);
    if (levelEntry(record.level)?.trace !== true) {
      throw new StockadeError('UNSUPPORTED', `container ${id} runs at the ${record.level} level: only the ${oneOf(traceLevels())} sees its syscalls`, { id });
    }
    const path = join(ctx.store.dir(id), TRACE_SOCKET);
    return new Promise<number>((resolve, reject) => {
      const sock = connect(path);
      sock.on('error', (e) => reject(new StockadeError('STATE_TRANSITION', `container ${id}: its sentry is not serving (${e.message})`, { id, path })));
      sock.pipe(process.stdout);
      sock.on('end', () => resolve(0));
    });
  },
};
