// The image config applied to the process as Docker applies it; user names read inside the root only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImageConfig } from '../../../src/image/manifest';
import { ensureWorkingDir, imageProcess, resolveUser } from '../../../src/image/runtime-config';

function rootfs(passwd: string, group: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-imgcfg-'));
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc/passwd'), passwd);
  writeFileSync(join(dir, 'etc/group'), group);
  return dir;
}

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1001::/home/alice:/bin/sh\n';
const GROUP = 'root:x:0:\nalice:x:1001:\nstaff:x:50:alice,bob\nwheel:x:10:bob\n';

function config(c: Partial<ImageConfig>): ImageConfig {
  return { architecture: 'amd64', os: 'linux', diffIds: [], entrypoint: undefined, cmd: undefined, env: [], workingDir: '', user: '', ...c };
}

test('User: names and numbers, with a group, supplementary groups from /etc/group', () => {
  const r = rootfs(PASSWD, GROUP);
  try {
    assert.deepEqual(resolveUser('', r), { uid: 0, gid: 0, additionalGids: [], home: '/root' });
    assert.deepEqual(resolveUser('alice', r), { uid: 1000, gid: 1001, additionalGids: [50], home: '/home/alice' });
    assert.deepEqual(resolveUser('1000', r), { uid: 1000, gid: 1001, additionalGids: [50], home: '/home/alice' });
    assert.deepEqual(resolveUser('4242', r), { uid: 4242, gid: 0, additionalGids: [], home: '/' });
    assert.deepEqual(resolveUser('alice:wheel', r), { uid: 1000, gid: 10, additionalGids: [50], home: '/home/alice' });
    assert.deepEqual(resolveUser('4242:77', r), { uid: 4242, gid: 77, additionalGids: [], home: '/' });
    assert.throws(() => resolveUser('mallory', r), /user "mallory" is not in the image's \/etc\/passwd/);
    assert.throws(() => resolveUser('alice:nogroup', r), /group "nogroup" is not in the image's \/etc\/group/);
  } finally {
    rmSync(r, { recursive: true, force: true });
  }
});

test("an image's /etc/passwd symlinked to a host file is read inside the root, not from the host", () => {
  const r = rootfs('', GROUP);
  const host = mkdtempSync(join(tmpdir(), 'stockade-hostpw-'));
  try {
    writeFileSync(join(host, 'passwd'), 'evil:x:0:0::/:/bin/sh\n');
    rmSync(join(r, 'etc/passwd'));
    symlinkSync(join(host, 'passwd'), join(r, 'etc/passwd'));
    assert.throws(() => resolveUser('evil', r), /not in the image's \/etc\/passwd/);
    rmSync(join(r, 'etc/passwd'));
    symlinkSync(`../../../../../../../..${join(host, 'passwd')}`, join(r, 'etc/passwd'));
    assert.throws(() => resolveUser('evil', r), /not in the image's \/etc\/passwd/);
  } finally {
    rmSync(r, { recursive: true, force: true });
    rmSync(host, { recursive: true, force: true });
  }
});

test('Entrypoint + Cmd, a command replacing Cmd, Env over defaults, WorkingDir', () => {
  const r = rootfs(PASSWD, GROUP);
  try {
    const c = config({ entrypoint: ['/bin/tini', '--'], cmd: ['serve'], env: ['PATH=/opt/bin', 'A=1'], workingDir: 'app', user: 'alice' });
    const p = imageProcess(c, r);
    assert.deepEqual(p.args, ['/bin/tini', '--', 'serve']);
    assert.deepEqual(p.env, ['PATH=/opt/bin', 'HOME=/home/alice', 'A=1']);
    assert.equal(p.cwd, '/app');
    assert.deepEqual(p.user, { uid: 1000, gid: 1001, additionalGids: [50] });
    const o = imageProcess(c, r, { cmd: ['other', 'x'], env: ['A=2', 'B=3'] });
    assert.deepEqual(o.args, ['/bin/tini', '--', 'other', 'x']);
    assert.deepEqual(o.env, ['PATH=/opt/bin', 'HOME=/home/alice', 'A=2', 'B=3']);
    const d = imageProcess(config({ cmd: ['sh'] }), r);
    assert.deepEqual(d.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root']);
    assert.equal(d.cwd, '/');
    assert.throws(() => imageProcess(config({}), r), /no Entrypoint or Cmd: give a command after --/);
  } finally {
    rmSync(r, { recursive: true, force: true });
  }
});

test('a missing WorkingDir is made; one through a symlink is refused, nothing made outside', () => {
  const r = rootfs(PASSWD, GROUP);
  const outside = mkdtempSync(join(tmpdir(), 'stockade-wd-'));
  try {
    ensureWorkingDir(r, '/srv/app/data');
    assert.ok(statSync(join(r, 'srv/app/data')).isDirectory());
    ensureWorkingDir(r, '/srv/app/data');
    symlinkSync(outside, join(r, 'link'));
    assert.throws(() => ensureWorkingDir(r, '/link/x'), /WorkingDir "\/link\/x" goes through \/link, which is a symlink/);
    assert.equal(existsSync(join(outside, 'x')), false);
  } finally {
    rmSync(r, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  }
});

