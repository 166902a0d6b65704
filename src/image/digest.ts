// Content digests: the one validated form (sha256:<64 hex>) every blob, snapshot and path is named by.
import { createHash, type Hash } from 'node:crypto';
import { StockadeError } from '../errors';

declare const digestBrand: unique symbol;
/** A validated `sha256:<64 lowercase hex>`: safe to put in a path (no `/`, no `..`). */
export type Digest = string & { readonly [digestBrand]: true };

const DIGEST = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && DIGEST.test(s);
}

/** Only sha256 is taken: it is what every registry and `docker save` write, and one algorithm keeps paths simple. */
export function parseDigest(s: unknown, what: string): Digest {
  if (isDigest(s)) return s;
  throw new StockadeError('IMAGE_INVALID', `${what}: ${JSON.stringify(s)} is not a sha256 digest`, { what });
}

export function hexOf(d: Digest): string {
  return d.slice('sha256:'.length);
}

export function sha256(): Hash {
  return createHash('sha256');
}

export function digestOfHash(h: Hash): Digest {
  return `sha256:${h.digest('hex')}` as Digest;
}

export function digestOf(data: Uint8Array): Digest {
  return digestOfHash(sha256().update(data));
}
