// The detached sentry's join messages: only a well-formed identity makes a joined process served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJoin } from '../../../src/sentry/host';

const good = { user: { uid: 1000, gid: 1000, groups: [10, 20], caps: '536871968' }, hostname: 'h', domainname: '' };

test('a join names the identity the exec\'d process is served as; the capability mask comes back a bigint', () => {
  assert.deepEqual(parseJoin(JSON.stringify(good)), {
    user: { uid: 1000, gid: 1000, groups: [10, 20], caps: 536871968n }, hostname: 'h', domainname: '',
  });
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
  ];
  for (const b of bad) assert.equal(parseJoin(typeof b === 'string' ? b : JSON.stringify(b)), undefined, JSON.stringify(b));
});
