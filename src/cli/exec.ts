// stockade exec [flags] ID [COMMAND ARGS...]: runc's exec flags, a new process in a created or running container.
import { execInContainer } from '../container/exec';
import { parseContainerId } from '../container/id';
import { StockadeError } from '../errors';
import { bool, int, list, parseArgs, str, type FlagSpec } from './args';
import type { Command } from './context';
import { failingWith } from './exit-status';

const EXEC_FLAGS: readonly FlagSpec[] = [
  { name: 'process', type: 'string', short: 'p' },
  { name: 'tty', type: 'bool', short: 't' },
  { name: 'console-socket', type: 'string' },
  { name: 'detach', type: 'bool', short: 'd' },
  { name: 'pid-file', type: 'string' },
  { name: 'cwd', type: 'string' },
  { name: 'env', type: 'list', short: 'e' },
  { name: 'user', type: 'string', short: 'u' },
  { name: 'additional-gids', type: 'list', short: 'g' },
  { name: 'cap', type: 'list', short: 'c' },
  { name: 'no-new-privs', type: 'bool' },
  { name: 'preserve-fds', type: 'int' },
  { name: 'process-label', type: 'string' },
  { name: 'apparmor', type: 'string' },
  { name: 'ignore-paused', type: 'bool' },
  { name: 'cgroup', type: 'list' },
  { name: 'pidfd-socket', type: 'string', ignored: true },
];

/** runc's exit status for an exec that failed before or at starting its process. */
const EXEC_FAILED = 255;

export const command: Command = {
  summary: 'execute a new process inside the container',
  usage: 'stockade exec [--process FILE] [--tty] [--console-socket SOCK] [--detach] [--pid-file FILE] [--cwd DIR] [--env K=V]... [--user UID[:GID]] [--additional-gids GID]... [--cap CAP]... [--no-new-privs] [--preserve-fds N] [--process-label L] [--apparmor P] [--ignore-paused] [--cgroup [CONTROLLER[,...]:]PATH]... ID [COMMAND ARGS...]',
  async run(argv, ctx) {
    // Everything after the id belongs to the command, its own flags included.
    const p = parseArgs(argv, EXEC_FLAGS, 'exec', { stopAfterPositionals: 1 });
    const [rawId, ...args] = p.positional;
    if (rawId === undefined) throw new StockadeError('USAGE', 'exec: expects a container id');
    // From here a failure exits 255, as runc's exec does (its usage errors above stay 1): a
    // client tells the exec's failure from the status of a process that ran.
    try {
      const id = parseContainerId(rawId);
      const processFile = str(p, 'process');
      if (processFile === undefined && args.length === 0) throw new StockadeError('USAGE', 'exec: expects a command to run after the container id, or --process');
      return await execInContainer({
        store: ctx.store,
        id,
        processFile,
        args,
        tty: p.flags.has('tty') ? bool(p, 'tty') : undefined,
        consoleSocket: str(p, 'console-socket'),
        detach: bool(p, 'detach'),
        pidFile: str(p, 'pid-file'),
        cwd: str(p, 'cwd'),
        env: list(p, 'env'),
        user: str(p, 'user'),
        additionalGids: list(p, 'additional-gids'),
        caps: list(p, 'cap'),
        noNewPrivs: p.flags.has('no-new-privs') ? bool(p, 'no-new-privs') : undefined,
        preserveFds: int(p, 'preserve-fds', 0),
        processLabel: str(p, 'process-label'),
        apparmor: str(p, 'apparmor'),
        ignorePaused: bool(p, 'ignore-paused'),
        subCgroups: list(p, 'cgroup'),
        debug: (m) => ctx.log.debug(m),
        levels: ctx.levels,
      });
    } catch (e) {
      throw failingWith(e, EXEC_FAILED);
    }
  },
};
