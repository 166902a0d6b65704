// stockade rmi REF...: remove images by name or id; layers no other image or container uses go too.
import { StockadeError } from '../errors';
import { removeImage } from '../image/pull';
import { ImageStore } from '../image/store';
import { out } from '../log/logger';
import { parseArgs } from './args';
import type { Command } from './context';

export const command: Command = {
  summary: 'remove images from the store',
  usage: 'stockade rmi REF|ID...',
  async run(argv, ctx) {
    const p = parseArgs(argv, [], 'rmi');
    if (p.positional.length === 0) throw new StockadeError('USAGE', 'rmi: needs at least one image reference or id');
    const store = new ImageStore(ctx.store.root);
    for (const ref of p.positional) {
      const r = await removeImage(store, ref);
      out(`${r.name}\n`);
    }
    return 0;
  },
};
