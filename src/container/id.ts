// Container ids: validated once at the CLI edge, branded afterwards.
import { StockadeError } from '../errors';

export type ContainerId = string & { readonly __brand: 'ContainerId' };

/**
 * runc's rule: ASCII letters, digits and these; "." and ".." would escape the state root. The C
 * entry checks ids by the same characters (STK_ID_EXTRA_CHARS in the generated header).
 */
export const ID_EXTRA_CHARS = '_+-.';
const ID_PATTERN = new RegExp(`^[A-Za-z0-9${ID_EXTRA_CHARS.replace(/[-\\\]^]/g, '\\$&')}]+$`);

/**
 * The id names a directory in the state root and, without a cgroupsPath, the container's cgroup
 * directory: it must fit in one file name (NAME_MAX). The C entry applies the same limit
 * (ID_MAX_LENGTH in the generated header).
 */
export const ID_MAX_LENGTH = 255;

export function parseContainerId(raw: string | undefined): ContainerId {
  if (raw === undefined || raw === '') {
    throw new StockadeError('USAGE', 'container id cannot be empty');
  }
  if (!ID_PATTERN.test(raw) || raw === '.' || raw === '..') {
    throw new StockadeError('CONTAINER_ID_INVALID', `invalid container id ${JSON.stringify(raw)}: only letters, digits, "_", "+", "-" and "." are allowed`, { id: raw });
  }
  if (raw.length > ID_MAX_LENGTH) {
    throw new StockadeError('CONTAINER_ID_INVALID',
      `container id ${JSON.stringify(raw)} is too long: ${raw.length} characters, at most ${ID_MAX_LENGTH} (it names a directory in the state root)`, { id: raw });
  }
  return raw as ContainerId;
}
