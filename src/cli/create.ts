// stockade create [--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID
import { createContainer } from '../container/create';
import { parseContainerId } from '../container/id';
import { StockadeError } from '../errors';
import { bool, int, parseArgs, str, type FlagSpec } from './args';
import type { Command } from './context';

export const CREATE_FLAGS: readonly FlagSpec[] = [
  { name: 'bundle', type: 'string', short: 'b' },
  { name: 'pid-file', type: 'string' },
  { name: 'console-socket', type: 'string' },
  { name: 'no-pivot', type: 'bool' },
  { name: 'no-new-keyring', type: 'bool' },
  { name: 'preserve-fds', type: 'int' },
  { name: 'pidfd-socket', type: 'string', ignored: true },
];

export function singleId(positional: string[], usage: string): string {
  if (positional.length !== 1) throw new StockadeError('USAGE', `${usage}: expects exactly one container id, got ${positional.length}`);
  return positional[0] ?? '';
}

export const command: Command = {
  summary: 'create a container',
  usage: 'stockade create [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID',
  async run(argv, ctx) {
    const p = parseArgs(argv, CREATE_FLAGS, 'create');
    const id = parseContainerId(singleId(p.positional, 'create'));
    const preserveFds = int(p, 'preserve-fds', 0);
    if (preserveFds < 0) throw new StockadeError('USAGE', 'create: --preserve-fds must not be negative');
    await createContainer({
      store: ctx.store,
      id,
      bundle: str(p, 'bundle') ?? process.cwd(),
      pidFile: str(p, 'pid-file'),
      consoleSocket: str(p, 'console-socket'),
      preserveFds,
      noPivot: bool(p, 'no-pivot'),
      noNewKeyring: bool(p, 'no-new-keyring'),
      debug: (m) => ctx.log.debug(m),
      warn: (m) => ctx.log.warn(m),
      levels: ctx.levels,
    });
    return 0;
  },
};
