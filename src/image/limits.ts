// The bounds on what an image may make stockade read or write: hostile images meet them first.

export interface ImageLimits {
  /** Bytes of a manifest, index or config: JSON this size is already absurd. */
  maxJsonBytes: number;
  /** Uncompressed bytes of one layer: what stops a gzip bomb (a few MB that inflate to terabytes). */
  maxLayerBytes: number;
  /** Entries in one layer: millions of empty files fill inodes while staying small. */
  maxLayerEntries: number;
  /** Nesting of indexes: an index naming an index naming... */
  maxIndexDepth: number;
}

export const DEFAULT_LIMITS: ImageLimits = {
  maxJsonBytes: 4 * 1024 * 1024,
  maxLayerBytes: 16 * 1024 * 1024 * 1024,
  maxLayerEntries: 1_000_000,
  maxIndexDepth: 4,
};
