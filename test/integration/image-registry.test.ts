// Pulls over the distribution API from Debian's docker-registry on 127.0.0.1, started by the test:
// anonymous, with htpasswd (basic auth), and behind a token server of the test's own (bearer, as Docker Hub).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import * as http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Runtime, integrationSkip, STOCKADE } from './harness';
import { busyboxLayer, ociLayout } from '../unit/image/build';

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function bcrypt(password: string): string | undefined {
  const r = spawnSync('python3', ['-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))', password], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.startsWith('$2') ? r.stdout.trim() : undefined;
}

const skip = integrationSkip()
  ?? (has('docker-registry') ? undefined : 'docker-registry is not installed (scripts/setup.sh installs it)')
  ?? (has('skopeo') ? undefined : 'skopeo is not installed (scripts/setup.sh installs it)');

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function until(cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('timed out');
}

function get(url: string): Promise<number> {
  return new Promise((resolve) => {
    http.get(url, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', () => resolve(0));
  });
}

interface Registry { port: number; proc: ChildProcess }

async function startRegistry(dir: string, name: string, auth = '', opts: { host?: string; tls?: { cert: string; key: string } } = {}): Promise<Registry> {
  const port = await freePort();
  const host = opts.host ?? '127.0.0.1';
  const cfg = join(dir, `${name}.yml`);
  const tls = opts.tls !== undefined ? `  tls:\n    certificate: ${opts.tls.cert}\n    key: ${opts.tls.key}\n` : '';
  writeFileSync(cfg, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, `${name}-data`)}\nhttp:\n  addr: ${host}:${port}\n${tls}${auth}`);
  const proc = spawn('docker-registry', ['serve', cfg], { stdio: 'ignore' });
  // Any answer, even a TLS alert to plain http, says it listens.
  await until(async () => (await get(`http://${host}:${port}/v2/`)) !== 0 || opts.tls !== undefined && (await new Promise<boolean>((r) => {
    const c = require('node:net').connect(port, host, () => { c.destroy(); r(true); }) as import('node:net').Socket;
    c.on('error', () => r(false));
  })));
  return { port, proc };
}

/** stockade without blocking the event loop (the token server and proxy answer from this process). */
function stockade(rt: Runtime, args: readonly string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(STOCKADE, ['--root', rt.root, '--log', rt.log, '--log-format', 'json', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

// Machine checks, made before any test starts: a skip is declared with its test, never taken from inside it.
const bcryptSkip = bcrypt('probe') === undefined ? "crypt (python3) is needed to make htpasswd's bcrypt hashes" : undefined;
const opensslSkip = has('openssl') ? undefined : 'openssl is not installed';
const offLoopback = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;
const offLoopbackSkip = offLoopback === undefined ? 'no non-loopback IPv4 address on this machine' : undefined;

describe('pull from a registry', { skip }, () => {
  let rt: Runtime;
  let dir: string;
  let layout: string;
  const procs: ChildProcess[] = [];
  const servers: http.Server[] = [];
  before(async () => {
    rt = new Runtime();
    dir = join(rt.root, '..', 'registry');
    mkdirSync(dir);
    layout = ociLayout(join(dir, 'layout'), { layers: [{ data: await busyboxLayer(), gzip: true }], config: { Cmd: ['/bin/echo', 'pulled over http'] } }).dir;
  });
  after(() => {
    for (const p of procs) p.kill('SIGTERM');
    for (const s of servers) s.close();
    rt.cleanup();
  });

  test('anonymous: pull, run --image, images', async () => {
    const reg = await startRegistry(dir, 'anon');
    procs.push(reg.proc);
    execFileSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://127.0.0.1:${reg.port}/test/busybox:v1`]);
    const ref = `127.0.0.1:${reg.port}/test/busybox:v1`;
    const p = await stockade(rt, ['pull', ref]);
    assert.equal(p.status, 0, p.stderr);
    assert.match(p.stdout, new RegExp(`^${ref} [a-f0-9]{12}\\n$`));
    const r = await stockade(rt, ['run', '--image', `docker://${ref}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'pulled over http\n');
    const missing = await stockade(rt, ['pull', `127.0.0.1:${reg.port}/test/busybox:nope`]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^stockade: 127\.0\.0\.1:\d+\/test\/busybox:nope: no such manifest\n$/);
  });

  test('htpasswd: basic auth with --creds; refused without', { skip: bcryptSkip }, async () => {
    const hash = bcrypt('s3cret');
    assert.ok(hash !== undefined, 'python3 made a bcrypt hash before and not now');
    writeFileSync(join(dir, 'htpasswd'), `tester:${hash}\n`);
    const reg = await startRegistry(dir, 'basic', `auth:\n  htpasswd:\n    realm: test\n    path: ${join(dir, 'htpasswd')}\n`);
    procs.push(reg.proc);
    execFileSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', '--dest-creds', 'tester:s3cret', `oci:${layout}:latest`, `docker://127.0.0.1:${reg.port}/test/busybox:v1`]);
    const ref = `127.0.0.1:${reg.port}/test/busybox:v1`;
    const no = await stockade(rt, ['pull', ref]);
    assert.equal(no.status, 1);
    assert.match(no.stderr, /^stockade: .*wants a user name and password \(--creds USER:PASSWORD\)\n$/);
    const wrong = await stockade(rt, ['pull', '--creds', 'tester:wrong', ref]);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /answered 401/);
    const ok = await stockade(rt, ['pull', '--creds', 'tester:s3cret', ref]);
    assert.equal(ok.status, 0, ok.stderr);
  });

  test('bearer token: a token server and a registry front that wants its tokens', async () => {
    const reg = await startRegistry(dir, 'behind-token');
    procs.push(reg.proc);
    execFileSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://127.0.0.1:${reg.port}/test/busybox:v1`]);
    const token = `tok-${process.pid}`;
    const seen: string[] = [];
    const tokenServer = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      seen.push(`${url.pathname} service=${url.searchParams.get('service')} scope=${url.searchParams.get('scope')} auth=${req.headers.authorization ?? ''}`);
      const creds = `Basic ${Buffer.from('hubuser:hubpass').toString('base64')}`;
      if (req.headers.authorization !== undefined && req.headers.authorization !== creds) { res.writeHead(401).end(); return; }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: req.headers.authorization === creds ? `${token}-user` : token }));
    });
    await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', r));
    servers.push(tokenServer);
    const tport = (tokenServer.address() as AddressInfo).port;
    const front = http.createServer((req, res) => {
      const auth = req.headers.authorization ?? '';
      if (req.url !== '/v2/' && auth !== `Bearer ${token}` && auth !== `Bearer ${token}-user`) {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${tport}/token",service="test-registry",scope="repository:test/busybox:pull"` }).end();
        return;
      }
      const up = http.request({ host: '127.0.0.1', port: reg.port, path: req.url, method: req.method, headers: { ...req.headers, authorization: '' } }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.writeHead(502).end());
      req.pipe(up);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    servers.push(front);
    const fport = (front.address() as AddressInfo).port;
    const ref = `127.0.0.1:${fport}/test/busybox:v1`;
    const anon = await stockade(rt, ['pull', ref]);
    assert.equal(anon.status, 0, anon.stderr);
    assert.match(seen[0] ?? '', /^\/token service=test-registry scope=repository:test\/busybox:pull auth=$/);
    await stockade(rt, ['rmi', ref]);
    const user = await stockade(rt, ['pull', '--creds', 'hubuser:hubpass', ref]);
    assert.equal(user.status, 0, user.stderr);
    assert.match(seen[seen.length - 1] ?? '', /auth=Basic /);
    const denied = await stockade(rt, ['pull', '--creds', 'hubuser:nope', ref]);
    assert.equal(denied.status, 1);
    assert.match(denied.stderr, /^stockade: .*the token server refused \(401\)\n$/);
  });

  test('https: verified against the CAs, never downgraded to http on a bad certificate', { skip: opensslSkip }, async () => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const reg = await startRegistry(dir, 'tls', '', { tls: { cert, key } });
    procs.push(reg.proc);
    execFileSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://127.0.0.1:${reg.port}/test/busybox:v1`]);
    const ref = `127.0.0.1:${reg.port}/test/busybox:v1`;
    // Unknown CA: refused, one line, and no retry in plain http (that would answer 400, not this).
    const untrusted = await stockade(rt, ['pull', ref]);
    assert.equal(untrusted.status, 1);
    assert.match(untrusted.stderr, /^stockade: 127\.0\.0\.1:\d+\/test\/busybox: cannot reach https:\/\/127\.0\.0\.1:\d+ \(self.signed certificate\)\n$/);
    // With its CA added as Node users add one (bin/stockade moves the variable aside; the client reads it back).
    const trusted = await stockade(rt, ['pull', ref], { NODE_EXTRA_CA_CERTS: cert });
    assert.equal(trusted.status, 0, trusted.stderr);
    assert.ok(readFileSync(rt.log, 'utf8').length > 0);
  });

  test('plain http is not used for a registry off the loopback unless asked', { skip: offLoopbackSkip }, async () => {
    const ip = offLoopback ?? '';
    const reg = await startRegistry(dir, 'offloop', '', { host: ip });
    procs.push(reg.proc);
    execFileSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${ip}:${reg.port}/test/busybox:v1`]);
    const ref = `${ip}:${reg.port}/test/busybox:v1`;
    const refused = await stockade(rt, ['pull', ref]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /cannot reach https:\/\//);
    const asked = await stockade(rt, ['pull', '--plain-http', ref]);
    assert.equal(asked.status, 0, asked.stderr);
  });
});
