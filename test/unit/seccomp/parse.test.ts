// parseSeccomp: the OCI `linux.seccomp` object into the rule model, and errors that name the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StockadeError } from '../../../src/errors';
import { parseSeccomp } from '../../../src/seccomp/parse';

function rejects(raw: unknown, field: string, message: RegExp): void {
  assert.throws(() => parseSeccomp(raw), (e: unknown) => {
    assert.ok(e instanceof StockadeError, String(e));
    assert.equal(e.code, 'SECCOMP_INVALID');
    assert.equal(e.context['field'], field);
    assert.ok(e.message.startsWith(`${field}: `), e.message);
    assert.match(e.message, message);
    return true;
  });
}

const ok = { defaultAction: 'SCMP_ACT_ERRNO' };

test('parses a full profile into the model', () => {
  const p = parseSeccomp({
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 38,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X86'],
    flags: ['SECCOMP_FILTER_FLAG_LOG'],
    listenerPath: '/run/l.sock',
    listenerMetadata: 'meta',
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }] },
      { names: ['kill'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 1, value: 9n, valueTwo: 0, op: 'SCMP_CMP_EQ' }] },
      { names: ['openat'], action: 'SCMP_ACT_NOTIFY' },
    ],
  });
  assert.deepEqual(p, {
    defaultAction: { kind: 'ERRNO', errno: 38 },
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
    flags: ['SECCOMP_FILTER_FLAG_LOG'],
    listenerPath: '/run/l.sock',
    listenerMetadata: 'meta',
    syscalls: [
      { names: ['read', 'write'], action: { kind: 'ALLOW' }, args: [] },
      { names: ['clone'], action: { kind: 'ALLOW' }, args: [{ index: 0, op: 'MASKED_EQ', value: 2114060288n, valueTwo: 0n }] },
      { names: ['kill'], action: { kind: 'ERRNO', errno: 13 }, args: [{ index: 1, op: 'EQ', value: 9n, valueTwo: 0n }] },
      { names: ['openat'], action: { kind: 'NOTIFY' }, args: [] },
    ],
  });
});

test('an unknown operator names its field', () => {
  rejects(
    { ...ok, syscalls: [{ names: ['a'], action: 'SCMP_ACT_ALLOW' }, { names: ['b'], action: 'SCMP_ACT_ALLOW' }, { names: ['c'], action: 'SCMP_ACT_ALLOW' },
      { names: ['d'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_FOO' }] }] },
    'linux.seccomp.syscalls[3].args[0].op', /unknown operator "SCMP_CMP_FOO"/,
  );
});

test('bad actions, errnos, indexes, values, arches and flags name their fields', () => {
  rejects({}, 'linux.seccomp.defaultAction', /expected an action name/);
  rejects({ defaultAction: 'SCMP_ACT_DENY' }, 'linux.seccomp.defaultAction', /unknown action "SCMP_ACT_DENY"/);
  rejects({ defaultAction: 'SCMP_ACT_NOTIFY' }, 'linux.seccomp.defaultAction', /cannot be the default action/);
  rejects({ defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1 }, 'linux.seccomp.defaultErrnoRet', /takes no errno/);
  rejects({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: -1 }, 'linux.seccomp.defaultErrnoRet', /unsigned 32-bit/);
  rejects({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 5000 }, 'linux.seccomp.defaultErrnoRet', /not an errno/);
  rejects({ ...ok, syscalls: [{ names: ['x'], action: 'SCMP_ACT_KILL', errnoRet: 1 }] }, 'linux.seccomp.syscalls[0].errnoRet', /SCMP_ACT_KILL takes no errno/);
  rejects({ ...ok, syscalls: [{ names: ['x'], action: 'SCMP_ACT_TRACE', errnoRet: 70000 }] }, 'linux.seccomp.syscalls[0].errnoRet', /16-bit/);
  rejects({ ...ok, syscalls: [{ names: [], action: 'SCMP_ACT_ALLOW' }] }, 'linux.seccomp.syscalls[0].names', /non-empty/);
  rejects({ ...ok, syscalls: [{ names: ['read', ''], action: 'SCMP_ACT_ALLOW' }] }, 'linux.seccomp.syscalls[0].names[1]', /syscall name/);
  rejects({ ...ok, syscalls: [{ names: ['read'] }] }, 'linux.seccomp.syscalls[0].action', /expected an action name/);
  rejects({ ...ok, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 0, op: 'SCMP_CMP_EQ' }] }] },
    'linux.seccomp.syscalls[0].args[0].index', /0\.\.5/);
  rejects({ ...ok, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }] },
    'linux.seccomp.syscalls[0].args[0].value', /unsigned 64-bit/);
  rejects({ ...ok, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2 ** 60, op: 'SCMP_CMP_EQ' }] }] },
    'linux.seccomp.syscalls[0].args[0].value', /above 2\^53/);
  rejects({ ...ok, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, valueTwo: 1n << 64n, op: 'SCMP_CMP_MASKED_EQ' }] }] },
    'linux.seccomp.syscalls[0].args[0].valueTwo', /not an unsigned 64-bit/);
  rejects({ ...ok, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_VAX'] }, 'linux.seccomp.architectures[1]', /unknown architecture "SCMP_ARCH_VAX"/);
  rejects({ ...ok, flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'] }, 'linux.seccomp.flags[0]', /unknown flag/);
  rejects({ ...ok, syscalls: {} }, 'linux.seccomp.syscalls', /expected an array/);
  rejects({ ...ok, listenerPath: 3 }, 'linux.seccomp.listenerPath', /expected a string/);
  rejects([], 'linux.seccomp', /expected an object/);
});

test('SCMP_ACT_NOTIFY needs listenerPath', () => {
  rejects({ ...ok, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }, { names: ['openat'], action: 'SCMP_ACT_NOTIFY' }] },
    'linux.seccomp.listenerPath', /must be set: linux\.seccomp\.syscalls\[1\] uses SCMP_ACT_NOTIFY/);
});

test('a caller can name the field prefix, and bigints up to 2^64-1 are exact', () => {
  assert.throws(() => parseSeccomp({ defaultAction: 1 }, 'process.seccomp'), /^StockadeError: process\.seccomp\.defaultAction: /);
  const p = parseSeccomp({ ...ok, syscalls: [{ names: ['x'], action: 'SCMP_ACT_ALLOW', args: [{ index: 5, value: (1n << 64n) - 1n, op: 'SCMP_CMP_LE' }] }] });
  assert.equal(p.syscalls[0]?.args[0]?.value, (1n << 64n) - 1n);
});

test('null optional fields read as absent, as Go-written configs have them', () => {
  const p = parseSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: null, architectures: null, flags: null, syscalls: [{ names: ['a'], action: 'SCMP_ACT_ERRNO', errnoRet: null, args: null }] });
  assert.deepEqual(p.defaultAction, { kind: 'ERRNO', errno: 1 });
  assert.deepEqual(p.syscalls[0]?.args, []);
});
