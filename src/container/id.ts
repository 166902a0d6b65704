// Container ids: validated once at the CLI edge, branded afterwards.
import { StockadeError } from '../errors';

export type ContainerId = string & { readonly __brand: 'ContainerId' };

// runc's rule: letters, digits, and _ + - . ; "." and ".." would escape the state root.
const ID_PATTERN = /^[\w+\-.]+$/;

export function parseContainerId(raw: string | undefined): ContainerId {
  if (raw === undefined || raw === '') {
    throw new StockadeError('USAGE', 'container id cannot be empty');
  }
  if (!ID_PATTERN.test(raw) || raw === '.' || raw === '..' || raw.length > 1024) {
    throw new StockadeError('CONTAINER_ID_INVALID', `invalid container id ${JSON.stringify(raw)}: only letters, digits, "_", "+", "-" and "." are allowed`, { id: raw });
  }
  return raw as ContainerId;
}
