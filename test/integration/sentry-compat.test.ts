// Issue 15, item 4: the same program at both levels gets the same answers where programs look closely: argument errors in the kernel's order, what /sys lists, /proc/self/ns, an O_TMPFILE linked into place.
//
// test/fixtures/sentry-compat.c makes each call and prints what it got; the sentry's answers must
// be the namespaces level's, one by one. Each case failed before the change that made it pass:
// readlink("") read the cwd's /proc link (ENOENT from the kernel), socket(AF_UNIX, SOCK_RAW) and
// socket(AF_PACKET, 999) got EPERM (OK and EINVAL), 97 names listed under /sys were ENOENT to a
// lookup, /proc/self/ns/* were ELOOP to stat, and linkat(/proc/self/fd/N, AT_SYMLINK_FOLLOW) of an
// O_TMPFILE file was ENOENT.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { sentryNative } from '../../src/native/addon';
import { Runtime, integrationSkip, json, type Result } from './harness';
import { buildStaticFixture, netAttackCompilerSkip } from '../helpers/net-attack';

function notificationSkip(): string | undefined {
  const sizes = sentryNative().notifSizes();
  return typeof sizes === 'number' ? `seccomp user notification is missing here (SECCOMP_GET_NOTIF_SIZES: ${sizes})` : undefined;
}

const skip = integrationSkip() ?? netAttackCompilerSkip() ?? notificationSkip();

type Level = 'sentry' | 'namespaces';

describe('the sentry answers as the kernel does (stockade do, both levels)', { skip }, () => {
  let rt: Runtime;
  let bin = '';
  before(() => {
    bin = buildStaticFixture('sentry-compat');
    rt = new Runtime();
  });
  after(() => rt.cleanup());

  function run<T>(level: Level, cmd: string): T {
    const r: Result = rt.run(['do', '--isolation', level, '--', bin, cmd], { timeout: 120_000, cwd: dirname(bin) });
    assert.equal(r.status, 0, `${cmd} (${level}): exit ${r.status ?? ''}; stdout: ${r.stdout.slice(0, 1000)} stderr: ${r.stderr.slice(-2000)}`);
    return json<T>(r.stdout.trim());
  }

  test('argument errors come first and in the kernel\'s order: empty paths, relative paths against a file, socket() families, types and protocols', () => {
    type Args = { results: Record<string, string> };
    const n = run<Args>('namespaces', 'args').results;
    const s = run<Args>('sentry', 'args').results;
    // The namespaces level is the kernel: a few answers the comparison rests on.
    assert.equal(n['readlink-empty'], 'ENOENT');
    assert.equal(n['openat-notdir'], 'ENOTDIR');
    assert.equal(n['socket-family-9999'], 'EAFNOSUPPORT');
    assert.equal(n['socket-inet-stream-udp'], 'EPROTONOSUPPORT');
    const differ = Object.keys(n).filter((k) => s[k] !== n[k]).map((k) => `${k}: sentry ${s[k] ?? '-'}, namespaces ${n[k] ?? '-'}`);
    assert.deepEqual(differ, []);
  });

  test('what a program finds: names listed under /sys are there to a lookup, /proc/self/ns/* are namespaces, an O_TMPFILE links into place through /proc/self/fd/N', () => {
    interface View { sys_unfound: string[]; sys_unfound_count: number; ns: string[]; ns_dir: string; tmpfile_link: string }
    const n = run<View>('namespaces', 'view');
    const s = run<View>('sentry', 'view');
    assert.deepEqual(s.sys_unfound, [], `listed under /sys, then not found (${s.sys_unfound_count})`);
    assert.ok(n.ns.includes('net=net:OK') && n.ns.includes('user=user:OK'), n.ns.join(' '));
    assert.deepEqual(s.ns, n.ns);
    assert.equal(n.tmpfile_link, 'OK');
    assert.equal(s.tmpfile_link, n.tmpfile_link);
  });
});
