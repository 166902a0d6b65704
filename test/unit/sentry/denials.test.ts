// Refusals sent to the sentry to be recorded: the reporting filter notifies them (ENOSYS answers
// stay in the kernel), and the sentry's judge gives each the errno the ordinary filter gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actionOf, formatAction } from '../../../src/seccomp/actions';
import type { Abi } from '../../../src/seccomp/arch';
import { abiOf } from '../../../src/seccomp/arch';
import { runFilter } from '../../../src/seccomp/interpreter';
import type { SeccompArch } from '../../../src/seccomp/types';
import { DenialJudge } from '../../../src/sentry/denials';
import type { Notification } from '../../../src/sentry/notification';
import { compileSentryFilter, sentrySyscallTable } from '../../../src/sentry/syscalls';
import { AF_INET, AF_PACKET, AF_UNIX, EAFNOSUPPORT, ENOSYS, EPERM, SOCK_RAW } from '../../../src/abi/linux/constants';

const X86_64: SeccompArch = 'SCMP_ARCH_X86_64';
const abi = abiOf(X86_64) as Abi;
const plain = compileSentryFilter(X86_64).program;
const SOCK_STREAM = 1;
const reporting = compileSentryFilter(X86_64, { reportDenials: true }).program;
const judge = new DenialJudge(X86_64);
const CLONE_NEWUSER = 0x10000000n;
const SIGCHLD = 17n;

function nr(name: string): number {
  const n = abi.table[name];
  if (n === undefined) throw new Error(`no ${name}`);
  return n;
}

function args(...a: bigint[]): Notification['args'] {
  const six = [...a, 0n, 0n, 0n, 0n, 0n, 0n].slice(0, 6);
  return six as unknown as Notification['args'];
}

function notif(name: string, a: Notification['args'] = args()): Notification {
  return { id: 1n, pid: 42, nr: nr(name), arch: abi.auditArch, args: a };
}

function action(program: Uint8Array, n: Notification): string {
  return formatAction(actionOf(runFilter(program, { nr: n.nr, arch: n.arch, args: n.args })));
}

test('the reporting filter notifies refusals other than ENOSYS and leaves everything else as it was', () => {
  let notified = 0;
  for (const e of sentrySyscallTable()) {
    const n = e.numbers[X86_64];
    if (n === undefined) continue;
    const call = notif(e.name);
    const before = action(plain, call);
    const after = action(reporting, call);
    if (before.startsWith('ERRNO(') && before !== `ERRNO(${ENOSYS})`) {
      assert.equal(after, 'NOTIFY', e.name);
      notified++;
    } else assert.equal(after, before, e.name);
  }
  assert.ok(notified >= 30, `${notified} refusals notified`);
  // clone3 is answered ENOSYS by the kernel on every fork: never a round trip through the sentry.
  assert.equal(action(reporting, notif('clone3')), `ERRNO(${ENOSYS})`);
});

test('the judge gives a refusal the ordinary filter errno, and leaves served calls to their handlers', () => {
  assert.deepEqual(judge.judge(notif('mount')), { syscall: 'mount', errno: EPERM });
  assert.deepEqual(judge.judge(notif('ptrace')), { syscall: 'ptrace', errno: EPERM });
  // clone: plain fork is allowed (never notified), a new user namespace is refused and recorded.
  assert.equal(action(reporting, notif('clone', args(SIGCHLD))), 'ALLOW');
  assert.equal(action(reporting, notif('clone', args(SIGCHLD | CLONE_NEWUSER))), 'NOTIFY');
  assert.deepEqual(judge.judge(notif('clone', args(SIGCHLD | CLONE_NEWUSER))), { syscall: 'clone', errno: EPERM });
  // socket: the same call is served for AF_UNIX and AF_INET, refused for packet and raw sockets.
  assert.equal(judge.judge(notif('socket', args(BigInt(AF_UNIX), BigInt(SOCK_STREAM)))), undefined);
  assert.equal(judge.judge(notif('socket', args(BigInt(AF_INET), BigInt(SOCK_STREAM)))), undefined);
  const packet = judge.judge(notif('socket', args(BigInt(AF_PACKET), BigInt(SOCK_RAW))));
  assert.equal(packet?.syscall, 'socket');
  assert.ok(packet !== undefined && packet.errno !== 0);
  assert.equal(action(plain, notif('socket', args(BigInt(AF_PACKET), BigInt(SOCK_RAW)))), `ERRNO(${packet?.errno})`);
  // Served calls and other ABIs are not the judge's.
  assert.equal(judge.judge(notif('openat')), undefined);
  assert.equal(judge.judge({ ...notif('mount'), arch: 0x40000003 }), undefined);
  assert.ok([EPERM, EAFNOSUPPORT].includes(packet?.errno ?? 0) || (packet?.errno ?? 0) > 0);
});
