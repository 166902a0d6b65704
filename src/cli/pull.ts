// stockade pull [--platform OS/ARCH] [--max-layer-size BYTES] REF: an image into the store, unpacked.
import { StockadeError } from '../errors';
import { hexOf } from '../image/digest';
import { parsePlatform } from '../image/manifest';
import { pullImage } from '../image/pull';
import { ImageStore } from '../image/store';
import { out } from '../log/logger';
import { bool, parseArgs, str, type Parsed } from './args';
import type { Command } from './context';

export const PULL_FLAGS = [
  { name: 'platform', type: 'string' },
  { name: 'max-layer-size', type: 'string' },
  { name: 'creds', type: 'string' },
  { name: 'plain-http', type: 'bool' },
] as const;

export function maxLayerSize(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) <= 0 || !Number.isSafeInteger(Number(v))) {
    throw new StockadeError('USAGE', `--max-layer-size must be a positive number of bytes, not ${JSON.stringify(v)}`);
  }
  return Number(v);
}

/** --creds USER:PASSWORD and --plain-http, for pull and run --image alike. */
export function registryOptions(p: Parsed): { creds?: string; plainHttp: boolean } {
  const creds = str(p, 'creds');
  return { ...(creds !== undefined ? { creds } : {}), plainHttp: bool(p, 'plain-http') };
}

export const command: Command = {
  summary: 'pull an image into the store (HOST/NAME:TAG, docker://..., oci:DIR[:TAG], docker-archive:FILE)',
  usage: 'stockade pull [--platform OS/ARCH[/VARIANT]] [--max-layer-size BYTES] [--creds USER:PASSWORD] [--plain-http] REF',
  async run(argv, ctx) {
    const p = parseArgs(argv, PULL_FLAGS, 'pull');
    if (p.positional.length !== 1) throw new StockadeError('USAGE', 'pull: needs exactly one image reference');
    const platform = str(p, 'platform');
    const max = maxLayerSize(str(p, 'max-layer-size'));
    const { record } = await pullImage(new ImageStore(ctx.store.root), p.positional[0] ?? '', {
      registry: registryOptions(p),
      ...(platform !== undefined ? { platform: parsePlatform(platform) } : {}),
      ...(max !== undefined ? { limits: { maxLayerBytes: max } } : {}),
      warn: (m) => ctx.log.warn(m),
      debug: (m) => ctx.log.debug(m),
    });
    out(`${record.name} ${hexOf(record.config).slice(0, 12)}\n`);
    return 0;
  },
};
