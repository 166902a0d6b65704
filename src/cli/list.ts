// stockade list [--format table|json] [-q]
import { sweepAbandoned } from '../container/do-sweep';
import { listStates } from '../container/query';
import { StockadeError } from '../errors';
import { bool, parseArgs, str } from './args';
import type { Command } from './context';
import { out } from '../log/logger';

export const command: Command = {
  summary: 'list containers',
  usage: 'stockade list [--format table|json] [--quiet]',
  async run(argv, ctx) {
    const p = parseArgs(argv, [{ name: 'format', type: 'string', short: 'f' }, { name: 'quiet', type: 'bool', short: 'q' }], 'list');
    const format = str(p, 'format') ?? 'table';
    if (format !== 'table' && format !== 'json') throw new StockadeError('USAGE', `list: --format must be table or json, not ${JSON.stringify(format)}`);
    // A `do` killed before it could delete its container left it behind: it goes now, unlisted.
    await sweepAbandoned(ctx.store, ctx.levels, (m) => ctx.log.debug(m));
    const states = await listStates(ctx.store, ctx.levels);
    if (bool(p, 'quiet')) {
      out(states.map((s) => `${s.id}\n`).join(''));
    } else if (format === 'json') {
      out(`${JSON.stringify(states)}\n`);
    } else {
      const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'],
        ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, s.created, s.owner])];
      const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
      out(rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd((widths[c] ?? 0) + 3))).join('')).join('\n') + '\n');
    }
    return 0;
  },
};
