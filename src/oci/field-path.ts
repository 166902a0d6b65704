// Names a place in a JSON document the way error messages show it: linux.namespaces[2].type.

export type PathSegment = string | number;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `['linux', 'sysctl', 'net.ipv4.ip_forward']` -> `linux.sysctl["net.ipv4.ip_forward"]`. */
export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (IDENTIFIER.test(s)) out += out === '' ? s : `.${s}`;
    // JSON quoting keeps dots, spaces and newlines in keys from breaking the one-line message.
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/**
 * Splits an RFC 6901 JSON pointer (Ajv's instancePath) into segments, walking `root` so that
 * array indices become numbers and object keys that look like numbers stay strings.
 */
export function pointerToSegments(pointer: string, root: unknown): PathSegment[] {
  if (pointer === '') return [];
  const segments: PathSegment[] = [];
  let node: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    // Without the data to look at (a pointer past what exists), an all-digit key is read as an index.
    if (Array.isArray(node) || (typeof node !== 'object' && /^(0|[1-9][0-9]*)$/.test(key))) {
      const index = Number(key);
      segments.push(index);
      node = Array.isArray(node) ? (node[index] as unknown) : undefined;
    } else {
      segments.push(key);
      node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined;
    }
  }
  return segments;
}

/** A value quoted for a one-line message, cut short when long. */
export function quote(value: unknown, max = 80): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}
