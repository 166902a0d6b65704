// Image references as skopeo writes them: oci:DIR[:TAG], docker-archive:FILE, registry names.
import { resolve } from 'node:path';
import { StockadeError } from '../errors';

export type ImageRef =
  | { kind: 'oci'; dir: string; tag: string | undefined }
  | { kind: 'docker-archive'; file: string }
  | { kind: 'registry'; host: string; repo: string; tag: string | undefined; digest: string | undefined };

export function parseReference(ref: string): ImageRef {
  if (ref === '' || /[\0\n]/.test(ref)) throw new StockadeError('USAGE', `image reference ${JSON.stringify(ref)} is not valid`, { ref });
  if (ref.startsWith('oci:')) {
    const rest = ref.slice(4);
    const colon = rest.indexOf(':');
    const dir = colon < 0 ? rest : rest.slice(0, colon);
    const tag = colon < 0 ? undefined : rest.slice(colon + 1);
    if (dir === '') throw new StockadeError('USAGE', `image reference ${ref}: oci: needs a directory`, { ref });
    if (tag !== undefined && tag === '') throw new StockadeError('USAGE', `image reference ${ref}: empty tag`, { ref });
    return { kind: 'oci', dir: resolve(dir), tag };
  }
  if (ref.startsWith('docker-archive:')) {
    const file = ref.slice('docker-archive:'.length);
    if (file === '') throw new StockadeError('USAGE', `image reference ${ref}: docker-archive: needs a file`, { ref });
    // skopeo's docker-archive:FILE:REF picks one image of several; stockade takes the first, so
    // a trailing :REF is not split off (a file name may hold a colon).
    return { kind: 'docker-archive', file: resolve(file) };
  }
  return parseRegistryName(ref.startsWith('docker://') ? ref.slice('docker://'.length) : ref, ref);
}

/** HOST/NAME[:TAG][@DIGEST] as Docker reads it: no host means Docker Hub, one component means library/. */
function parseRegistryName(s: string, ref: string): ImageRef {
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
  }
  const parts = rest.split('/');
  let host = 'registry-1.docker.io';
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    host = first;
    parts.shift();
  } else if (parts.length === 1) {
    parts.unshift('library');
  }
  const repo = parts.join('/');
  if (!/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(repo)) {
    throw new StockadeError('USAGE', `image reference ${JSON.stringify(ref)}: ${JSON.stringify(repo)} is not a repository name`, { ref });
  }
  if (tag !== undefined && !/^[\w][\w.-]{0,127}$/.test(tag)) {
    throw new StockadeError('USAGE', `image reference ${JSON.stringify(ref)}: ${JSON.stringify(tag)} is not a tag`, { ref });
  }
  if (digest !== undefined && !/^sha256:[a-f0-9]{64}$/.test(digest)) {
    throw new StockadeError('USAGE', `image reference ${JSON.stringify(ref)}: ${JSON.stringify(digest)} is not a sha256 digest`, { ref });
  }
  return { kind: 'registry', host, repo, tag: tag ?? (digest === undefined ? 'latest' : undefined), digest };
}

/** The name an image is kept under: one spelling per source, so a second pull finds the first. */
export function canonicalName(r: ImageRef): string {
  switch (r.kind) {
    case 'oci': return `oci:${r.dir}${r.tag !== undefined ? `:${r.tag}` : ''}`;
    case 'docker-archive': return `docker-archive:${r.file}`;
    case 'registry': return `${r.host}/${r.repo}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
  }
}
