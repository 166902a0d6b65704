// stockade images [--format table|json] [-q]: the images in the store.
import { StockadeError } from '../errors';
import { hexOf } from '../image/digest';
import { ImageStore } from '../image/store';
import { out } from '../log/logger';
import { bool, parseArgs, str } from './args';
import type { Command } from './context';

function human(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u] ?? ''}`;
}

export const command: Command = {
  summary: 'list the images in the store',
  usage: 'stockade images [--format table|json] [--quiet]',
  async run(argv, ctx) {
    const p = parseArgs(argv, [{ name: 'format', type: 'string', short: 'f' }, { name: 'quiet', type: 'bool', short: 'q' }], 'images');
    const format = str(p, 'format') ?? 'table';
    if (format !== 'table' && format !== 'json') throw new StockadeError('USAGE', `images: --format must be table or json, not ${JSON.stringify(format)}`);
    const refs = new ImageStore(ctx.store.root).refs();
    if (bool(p, 'quiet')) {
      out(refs.map((r) => `${r.name}\n`).join(''));
    } else if (format === 'json') {
      out(`${JSON.stringify(refs)}\n`);
    } else {
      const rows = [['REFERENCE', 'IMAGE ID', 'PLATFORM', 'LAYERS', 'SIZE', 'PULLED'],
        ...refs.map((r) => [r.name, hexOf(r.config).slice(0, 12), r.platform, String(r.layers.length), human(r.size), r.pulled])];
      const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
      out(rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd((widths[c] ?? 0) + 3))).join('')).join('\n') + '\n');
    }
    return 0;
  },
};
