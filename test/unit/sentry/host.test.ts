// The detached sentry's join messages: only a well-formed identity makes a joined process served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJoin } from '../../../src/sentry/host';
import { podSandbox } from '../../../src/sentry/supervisor';

const good = { user: { uid: 1000, gid: 1000, groups: [10, 20], caps: '536871968' }, hostname: 'h', domainname: '' };

test('a join names the identity the exec\'d process is served as; the capability mask comes back a bigint', () => {
  assert.deepEqual(parseJoin(JSON.stringify(good)), {
    who: { user: { uid: 1000, gid: 1000, groups: [10, 20], caps: 536871968n }, hostname: 'h', domainname: '' },
  });
  // A whole container of a pod names itself.
  assert.equal(parseJoin(JSON.stringify({ ...good, container: 'app-1' }))?.container, 'app-1');
  // A container's network policy travels with its join, parsed; a bad one is no join.
  assert.deepEqual(parseJoin(JSON.stringify({ ...good, network: 'none' }))?.who.network, { kind: 'none' });
  assert.equal(parseJoin(JSON.stringify({ ...good, network: 'example.com:99999' })), undefined);
  assert.equal(parseJoin(JSON.stringify({ ...good, network: 7 })), undefined);
});

test('anything else is no join: bad JSON, missing or wrong-typed fields, ids out of range, a mask that is not a number', () => {
  const bad: unknown[] = [
    'not json', null, 7, {},
    { ...good, user: { ...good.user, uid: -1 } },
    { ...good, user: { ...good.user, gid: 2 ** 32 } },
    { ...good, user: { ...good.user, uid: 1.5 } },
    { ...good, user: { ...good.user, groups: ['10'] } },
    { ...good, user: { ...good.user, groups: 10 } },
    { ...good, user: { ...good.user, caps: 5 } },
    { ...good, user: { ...good.user, caps: '-1' } },
    { ...good, user: { ...good.user, caps: '0x10' } },
    { ...good, user: { ...good.user, caps: '1'.repeat(21) } },
    { ...good, user: { ...good.user, caps: (1n << 64n).toString() } },
    { ...good, user: null },
    { ...good, hostname: undefined },
    { ...good, domainname: 3 },
    { ...good, container: '..' },
    { ...good, container: 'a/b' },
    { ...good, container: '' },
    { ...good, container: 7 },
  ];
  for (const b of bad) assert.equal(parseJoin(typeof b === 'string' ? b : JSON.stringify(b)), undefined, JSON.stringify(b));
});

test('a pod\'s container names its sandbox through containerd\'s or CRI-O\'s annotations; the sandbox itself and a bad id name none', () => {
  const cri = (type: string, sandbox: string): Record<string, string> => ({ 'io.kubernetes.cri.container-type': type, 'io.kubernetes.cri.sandbox-id': sandbox });
  assert.equal(podSandbox(cri('container', 'sb1'), 'app'), 'sb1');
  assert.equal(podSandbox({ 'io.kubernetes.cri-o.ContainerType': 'container', 'io.kubernetes.cri-o.SandboxID': 'sb2' }, 'app'), 'sb2');
  assert.equal(podSandbox(cri('sandbox', 'sb1'), 'sb1'), undefined);
  assert.equal(podSandbox(cri('container', 'app'), 'app'), undefined);
  assert.equal(podSandbox(cri('container', '../x'), 'app'), undefined);
  assert.equal(podSandbox({}, 'app'), undefined);
  assert.equal(podSandbox(undefined, 'app'), undefined);
});
