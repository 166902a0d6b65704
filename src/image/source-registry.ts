// A registry over the distribution API (HOST/NAME:TAG, docker://...): manifests and blobs over HTTP(S).
//
// Auth as Docker Hub does it: a request answered 401 with `WWW-Authenticate: Bearer realm=...,
// service=...,scope=...` is retried with a token fetched from the realm (anonymously, or with the
// user's credentials as basic auth); `Basic realm=...` is retried with the credentials themselves.
// TLS is verified against the system's CA bundle (and NODE_EXTRA_CA_CERTS's, which bin/stockade
// moves aside); plain http is used only for a loopback registry that does not speak TLS, or when
// asked for with plainHttp. Every byte read is still verified by the store against its digest.
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { StockadeError } from '../errors';
import { digestOf, parseDigest } from './digest';
import type { ImageLimits } from './limits';
import { MT, isIndexType, isManifestType, type Descriptor } from './manifest';
import type { ImageRef } from './reference';
import type { ImageSource } from './source';

export interface RegistryOptions {
  /** user:password; else the registry's entry in $REGISTRY_AUTH_FILE or ~/.docker/config.json. */
  creds?: string | undefined;
  /** Allow plain http to any host (as skopeo's --src-tls-verify=false allows). */
  plainHttp?: boolean;
}

const ACCEPT = [MT.ociIndex, MT.ociManifest, MT.dockerList, MT.dockerManifest].join(', ');
const SYSTEM_CAS = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'];

function bad(what: string, why: string): StockadeError {
  return new StockadeError('IMAGE_INVALID', `${what}: ${why}`, { what });
}

function systemCas(): Buffer[] {
  const cas: Buffer[] = [];
  for (const p of [...SYSTEM_CAS, process.env['STOCKADE_SAVED_NODE_EXTRA_CA_CERTS'], process.env['NODE_EXTRA_CA_CERTS']]) {
    if (p === undefined || p === '') continue;
    try { cas.push(readFileSync(p)); } catch { /* not on this system */ }
  }
  return cas;
}

function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Credentials for `host` from an auth file (docker's config.json format: auths[host].auth = base64 user:pass). */
function fileCreds(host: string): string | undefined {
  const files = [process.env['REGISTRY_AUTH_FILE'], join(homedir(), '.docker', 'config.json')];
  for (const f of files) {
    if (f === undefined || f === '') continue;
    try {
      const v = JSON.parse(readFileSync(f, 'utf8')) as { auths?: Record<string, { auth?: unknown }> };
      const keys = host === 'registry-1.docker.io' ? ['https://index.docker.io/v1/', 'docker.io', 'registry-1.docker.io'] : [host, `https://${host}`];
      for (const k of keys) {
        const auth = v.auths?.[k]?.auth;
        if (typeof auth === 'string') return Buffer.from(auth, 'base64').toString('utf8');
      }
    } catch { /* no file, or not JSON: no credentials from it */ }
  }
  return undefined;
}

/** The parameters of a WWW-Authenticate challenge: scheme and key="value" pairs. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  const params: Record<string, string> = {};
  for (const p of (m?.[2] ?? '').matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) params[(p[1] ?? '').toLowerCase()] = p[2] ?? p[3] ?? '';
  return { scheme: (m?.[1] ?? '').toLowerCase(), params };
}

interface Response { status: number; headers: http.IncomingHttpHeaders; body: http.IncomingMessage }

export class RegistrySource implements ImageSource {
  readonly #host: string;
  readonly #repo: string;
  readonly #reference: string;
  readonly #limits: ImageLimits;
  readonly #creds: string | undefined;
  readonly #plainHttp: boolean;
  readonly #what: string;
  readonly #ca = systemCas();
  #scheme: 'https' | 'http';
  #authorization: string | undefined;
  /** Manifests already read while resolving: served from here rather than fetched again. */
  readonly #manifests = new Map<string, Buffer>();

  constructor(ref: Extract<ImageRef, { kind: 'registry' }>, limits: ImageLimits, opts: RegistryOptions = {}) {
    this.#host = ref.host;
    this.#repo = ref.repo;
    this.#reference = ref.digest ?? ref.tag ?? 'latest';
    this.#limits = limits;
    this.#creds = opts.creds ?? fileCreds(ref.host);
    this.#plainHttp = opts.plainHttp === true;
    this.#scheme = this.#plainHttp ? 'http' : 'https';
    this.#what = `${ref.host}/${ref.repo}`;
  }

  #request(url: URL, headers: Record<string, string>): Promise<Response> {
    return new Promise((resolve, reject) => {
      const lib = url.protocol === 'https:' ? https : http;
      const req = lib.request(url, {
        method: 'GET', headers: { 'user-agent': 'stockade', ...headers },
        ...(url.protocol === 'https:' ? { ca: this.#ca } : {}),
        timeout: 60_000,
      }, (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }));
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end();
    });
  }

  /** GET path on the registry: scheme fallback for loopback, auth challenges, redirects. */
  async #get(path: string, accept?: string): Promise<Response> {
    let url = new URL(`${this.#scheme}://${this.#host}${path}`);
    let authRetried = false;
    for (let hop = 0; hop < 8; hop++) {
      const sameHost = url.host === this.#host;
      const headers: Record<string, string> = {};
      if (accept !== undefined) headers['accept'] = accept;
      // Credentials and tokens go to the registry only, never to where it redirects blobs.
      if (sameHost && this.#authorization !== undefined) headers['authorization'] = this.#authorization;
      let res: Response;
      try {
        res = await this.#request(url, headers);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        // A loopback registry without TLS (as `docker-registry` runs by default) is spoken to in http.
        if (sameHost && url.protocol === 'https:' && isLoopback(this.#host) && /EPROTO|wrong version number|ECONNRESET|packet length too long/i.test(msg)) {
          this.#scheme = 'http';
          url = new URL(`http://${this.#host}${url.pathname}${url.search}`);
          continue;
        }
        throw new StockadeError('IMAGE_NOT_FOUND', `${this.#what}: cannot reach ${url.origin} (${msg})`, { what: this.#what });
      }
      if (res.status >= 300 && res.status < 400 && typeof res.headers.location === 'string') {
        res.body.resume();
        const next = new URL(res.headers.location, url);
        if (next.protocol === 'http:' && url.protocol === 'https:' && !this.#plainHttp) {
          throw bad(this.#what, `redirected from https to plain http (${next.origin}); refused`);
        }
        url = next;
        continue;
      }
      if (res.status === 401 && sameHost && !authRetried) {
        res.body.resume();
        authRetried = true;
        await this.#authenticate(String(res.headers['www-authenticate'] ?? ''));
        continue;
      }
      return res;
    }
    throw bad(this.#what, 'too many redirects');
  }

  async #authenticate(challenge: string): Promise<void> {
    const { scheme, params } = parseChallenge(challenge);
    const basic = this.#creds !== undefined ? `Basic ${Buffer.from(this.#creds).toString('base64')}` : undefined;
    if (scheme === 'basic') {
      if (basic === undefined) throw new StockadeError('UNSUPPORTED', `${this.#what}: the registry wants a user name and password (--creds USER:PASSWORD)`, { what: this.#what });
      this.#authorization = basic;
      return;
    }
    if (scheme !== 'bearer' || params['realm'] === undefined) throw bad(this.#what, `unsupported authentication challenge ${JSON.stringify(challenge)}`);
    const realm = new URL(params['realm']);
    if (realm.protocol !== 'https:' && !this.#plainHttp && !isLoopback(realm.host)) {
      throw bad(this.#what, `token realm ${realm.origin} is not https; refused`);
    }
    if (params['service'] !== undefined) realm.searchParams.set('service', params['service']);
    realm.searchParams.set('scope', params['scope'] ?? `repository:${this.#repo}:pull`);
    const res = await this.#request(realm, basic !== undefined ? { authorization: basic } : {});
    const body = await readAll(res.body, 1024 * 1024, `${this.#what}: token`);
    if (res.status !== 200) throw new StockadeError('UNSUPPORTED', `${this.#what}: the token server refused (${res.status})${basic === undefined ? '; credentials may be needed (--creds)' : ''}`, { what: this.#what });
    let token: unknown;
    try {
      const v = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      token = v['token'] ?? v['access_token'];
    } catch { /* reported below */ }
    if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) throw bad(this.#what, 'the token server sent no token');
    this.#authorization = `Bearer ${token}`;
  }

  async #manifest(reference: string): Promise<{ data: Buffer; mediaType: string }> {
    const res = await this.#get(`/v2/${this.#repo}/manifests/${reference}`, ACCEPT);
    if (res.status === 404) { res.body.resume(); throw new StockadeError('IMAGE_NOT_FOUND', `${this.#what}:${reference}: no such manifest`, { what: this.#what }); }
    if (res.status !== 200) { res.body.resume(); throw new StockadeError('IMAGE_NOT_FOUND', `${this.#what}:${reference}: the registry answered ${res.status}`, { what: this.#what }); }
    const data = await readAll(res.body, this.#limits.maxJsonBytes, `${this.#what}:${reference}`);
    const mediaType = String(res.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    return { data, mediaType };
  }

  async resolve(): Promise<Descriptor> {
    const { data, mediaType } = await this.#manifest(this.#reference);
    // The digest is the content's own: the registry's Docker-Content-Digest header is not trusted.
    const digest = digestOf(data);
    if (this.#reference.startsWith('sha256:') && parseDigest(this.#reference, this.#what) !== digest) {
      throw bad(this.#what, `manifest has digest ${digest}, not the ${this.#reference} asked for; refused`);
    }
    this.#manifests.set(digest, data);
    const mt = isIndexType(mediaType) || isManifestType(mediaType) ? mediaType : MT.ociManifest;
    return { mediaType: mt, digest, size: data.length, platform: undefined, annotations: {} };
  }

  async open(d: Descriptor): Promise<Readable> {
    const known = this.#manifests.get(d.digest);
    if (known !== undefined) return Readable.from([known]);
    if (isIndexType(d.mediaType) || isManifestType(d.mediaType)) return Readable.from([(await this.#manifest(d.digest)).data]);
    const res = await this.#get(`/v2/${this.#repo}/blobs/${d.digest}`);
    if (res.status !== 200) {
      res.body.resume();
      throw new StockadeError('IMAGE_NOT_FOUND', `${this.#what}: blob ${d.digest}: the registry answered ${res.status}`, { what: this.#what });
    }
    return res.body;
  }

  close(): void { /* connections are not kept alive */ }
}

async function readAll(body: Readable, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    const b = c as Buffer;
    n += b.length;
    if (n > max) { body.destroy(); throw bad(what, `response larger than ${max} bytes; refused`); }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
