// What the puller asks of any place images come from: the descriptor a reference names, and blobs.
import type { Readable } from 'node:stream';
import type { Descriptor } from './manifest';

export interface ImageSource {
  /** The descriptor the reference names: a manifest, or an index to choose a platform from. */
  resolve(): Promise<Descriptor>;
  /** A blob's bytes; the store verifies size and digest as they arrive. */
  open(d: Descriptor): Promise<Readable>;
  close(): void;
}
