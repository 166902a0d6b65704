// stockade ps [--format table|json] ID [ps options]: the processes running in a container.
import { execFileSync } from 'node:child_process';
import { parseContainerId } from '../container/id';
import { containerPids, filterPsTable } from '../container/ps';
import { StockadeError } from '../errors';
import { parseArgs, str } from './args';
import type { Command } from './context';
import { out } from '../log/logger';

export const command: Command = {
  summary: 'display the processes running inside a container',
  usage: 'stockade ps [--format table|json] ID [ps options]',
  async run(argv, ctx) {
    const p = parseArgs(argv, [{ name: 'format', type: 'string', short: 'f' }], 'ps', { stopAfterPositionals: 1 });
    if (p.positional.length < 1) throw new StockadeError('USAGE', 'ps: expects a container id');
    const id = parseContainerId(p.positional[0]);
    const format = str(p, 'format') ?? 'table';
    if (format !== 'table' && format !== 'json') throw new StockadeError('USAGE', `ps: --format must be table or json, not ${JSON.stringify(format)}`, { flag: 'format' });
    const pids = await containerPids(ctx.store, ctx.levels, id);
    if (format === 'json') {
      out(`${JSON.stringify(pids)}\n`);
      return 0;
    }
    const psArgs = p.positional.slice(1);
    let output: string;
    try {
      output = execFileSync('ps', psArgs.length > 0 ? psArgs : ['-ef'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
    } catch (e) {
      throw new StockadeError('SYSTEM', `ps: running ps ${psArgs.join(' ') || '-ef'} failed: ${(e as Error).message.split('\n')[0] ?? ''}`, {});
    }
    out(filterPsTable(output, pids));
    return 0;
  },
};
