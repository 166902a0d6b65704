// stockade run [create flags] [--detach] [--keep] ID: create and start, then wait unless detached.
import { parseContainerId } from '../container/id';
import { runContainer } from '../container/run';
import { lightGlobals } from '../container/light-wait';
import { StockadeError } from '../errors';
import { bool, int, parseArgs, str } from './args';
import type { Command } from './context';
import { CREATE_FLAGS, singleId } from './create';

export const command: Command = {
  summary: 'create and start a container',
  usage: 'stockade run [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] [--detach] [--keep] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID\n       stockade run --image REF [--env KEY=VALUE]... [--platform OS/ARCH] [--creds USER:PASSWORD] [--plain-http] [--max-layer-size BYTES] [ID] [-- CMD [ARG...]]',
  async run(argv, ctx) {
    const own = argv.indexOf('--') < 0 ? argv : argv.slice(0, argv.indexOf('--'));
    if (own.some((a) => a === '--image' || a.startsWith('--image='))) return (require('./run-image') as { command: Command }).command.run(argv, ctx);
    const p = parseArgs(argv, [...CREATE_FLAGS, { name: 'detach', type: 'bool', short: 'd' }, { name: 'keep', type: 'bool' }], 'run');
    const id = parseContainerId(singleId(p.positional, 'run'));
    if (bool(p, 'detach') && bool(p, 'keep')) throw new StockadeError('USAGE', 'run: --keep cannot be used with --detach');
    return runContainer({
      store: ctx.store,
      id,
      bundle: str(p, 'bundle') ?? process.cwd(),
      pidFile: str(p, 'pid-file'),
      consoleSocket: str(p, 'console-socket'),
      preserveFds: int(p, 'preserve-fds', 0),
      noPivot: bool(p, 'no-pivot'),
      noNewKeyring: bool(p, 'no-new-keyring'),
      detach: bool(p, 'detach'),
      keep: bool(p, 'keep'),
      debug: (m) => ctx.log.debug(m),
      warn: (m) => ctx.log.warn(m),
      levels: ctx.levels,
      lightGlobals: lightGlobals(ctx.store.root, ctx.log.file),
    });
  },
};
