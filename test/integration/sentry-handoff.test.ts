// stockade-init hands the sentry filter's listener over TAG_SENTRY's socket, and a worker_thread supervisor answers the workload's calls.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { heldCapabilities, buildPlan, type PlanOptions } from '../../src/container/plan';
import { isSystemError, sentryNative, socketpair } from '../../src/native/addon';
import { launchInit, type Launched } from '../../src/native/launcher';
import { encodePlan } from '../../src/native/protocol';
import { SECCOMP_USER_NOTIF_FLAG_CONTINUE } from '../../src/abi/linux/constants';
import { ALLOW, NOTIFY } from '../../src/seccomp/actions';
import { abiOf, nativeArch, syscallNumber } from '../../src/seccomp/arch';
import { compile } from '../../src/seccomp/compile';
import type { Spec } from '../../src/oci/spec';
import { makeBundle, type Bundle } from '../helpers/rootfs';
import type { SupervisorReport } from '../helpers/sentry-supervisor';
import { integrationSkip, probeSpec } from './harness';

const GETPPID_ANSWER = 4242;

function unsupported(): string | undefined {
  const sizes = process.platform === 'linux' ? sentryNative().notifSizes() : -1;
  if (typeof sizes === 'number') return `seccomp user notification is missing here (SECCOMP_GET_NOTIF_SIZES: ${sizes})`;
  return undefined;
}
const skip = integrationSkip() ?? unsupported();

function nr(name: string): number {
  const abi = abiOf(nativeArch());
  const n = abi === undefined ? undefined : syscallNumber(abi, name);
  if (n === undefined) throw new Error(`no syscall number for ${name}`);
  return n;
}

/** The named calls notify, everything else runs. */
function sentryFilter(names: readonly string[]): { flags: number; program: Buffer } {
  const f = compile({ defaultAction: ALLOW, architectures: [], flags: [], syscalls: [{ names, action: NOTIFY, args: [] }] });
  return { flags: f.flags, program: f.program };
}

function planFor(t: TestContext, bundle: Bundle, spec: Spec, notify: readonly string[] = ['getppid', 'execve']): Buffer {
  const state = mkdtempSync(join(tmpdir(), 'stockade-sentry-it-'));
  t.after(() => rmSync(state, { recursive: true, force: true }));
  const rootfsMountpoint = join(state, 'rootfs');
  mkdirSync(rootfsMountpoint, { mode: 0o700 });
  const opts: PlanOptions = {
    id: 'sentry-handoff', bundle: bundle.dir, rootfsMountpoint, startSocket: undefined, consoleSocket: undefined,
    preserveFds: 0, noPivot: false, noNewKeyring: true, monitor: true, rootfsMode: 'bind', createHooks: false,
    heldCapabilities: heldCapabilities(), cgroupPaths: [], sentry: sentryFilter(notify),
  };
  return encodePlan(buildPlan(spec, opts));
}

/** launchInit with a fresh socketpair: ours stays with the caller, the other goes to stockade-init. */
function launchWithSentry(plan: Buffer, socket?: number): { ours: number; launched: Promise<Launched> } {
  const [ours, pairEnd] = socketpair();
  const theirs = socket ?? pairEnd;
  if (socket !== undefined) closeSync(pairEnd);
  let closed = false;
  const closeTheirs = (): void => { if (!closed) { closed = true; closeSync(theirs); } };
  const launched = launchInit({ plan, preserveFds: 0, awaitExec: true, sentrySocket: theirs, onSpawn: closeTheirs });
  launched.then(closeTheirs, closeTheirs);
  return { ours, launched };
}

test('the listener reaches the supervisor; execve is continued, getppid answered, hang-up seen at exit', { skip, timeout: 60_000 }, async (t) => {
  const bundle = makeBundle({ spec: {} });
  t.after(() => bundle.remove());
  const spec = probeSpec(['/bin/sh', '-c', 'echo $PPID > /tmp/ppid; exit 7'], (s) => { s.root = { path: 'rootfs', readonly: false }; });
  const plan = planFor(t, bundle, spec);

  const { ours, launched } = launchWithSentry(plan);
  t.after(() => closeSync(ours));
  const worker = new Worker(join(__dirname, '..', 'helpers', 'sentry-supervisor.js'), {
    workerData: {
      addon: require.resolve('../../src/native/addon'), socket: ours, getppid: GETPPID_ANSWER,
      execveNr: nr('execve'), getppidNr: nr('getppid'), continueFlag: SECCOMP_USER_NOTIF_FLAG_CONTINUE,
    },
  });
  const reported = once(worker, 'message') as Promise<[SupervisorReport]>;

  let pid = 0;
  let watchdog: NodeJS.Timeout | undefined;
  try {
    const l = await launched;
    pid = l.pid;
    // A supervisor that never answers would leave the workload, and the worker, blocked for good.
    watchdog = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }, 30_000);
    const exit = await l.helperExit;
    assert.deepEqual(exit, { code: 7, signal: null }, 'the workload ran to its own exit status');
    const [report] = await reported;
    assert.equal(report.error, undefined);
    assert.deepEqual(report.handoff, { gotFd: true, data: 'L' });
    assert.equal(report.execs[0], '/bin/sh', 'memReadString read execve\'s filename');
    assert.ok(report.getppids >= 1, 'getppid reached the supervisor');
    assert.ok(report.validBefore.length > 0 && report.validBefore.every((v) => v), 'ids were valid before the answer');
    assert.ok(report.validAfter.every((v) => !v), 'and invalid after it');
    assert.equal(report.end, 1, 'notifRecv reported the hang-up after the workload exited');
    assert.equal(readFileSync(join(bundle.rootfs, 'tmp', 'ppid'), 'utf8'), `${GETPPID_ANSWER}\n`);
  } finally {
    clearTimeout(watchdog);
    await worker.terminate();
  }
});

test('a sentry filter without no_new_privs fails with one line naming the sentry', { skip }, async (t) => {
  const bundle = makeBundle({ spec: {} });
  t.after(() => bundle.remove());
  const spec = probeSpec(['/bin/true'], (s) => { if (s.process !== undefined) s.process.noNewPrivileges = false; });
  const { ours, launched } = launchWithSentry(planFor(t, bundle, spec));
  t.after(() => closeSync(ours));
  await assert.rejects(launched, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.ok(!isSystemError(e));
    assert.match(e.message, /^sentry: .*no_new_privs/);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
});

test('a failed hand-off is reported, not waited on, although sendto itself notifies', { skip, timeout: 30_000 }, async (t) => {
  const bundle = makeBundle({ spec: {} });
  t.after(() => bundle.remove());
  const spec = probeSpec(['/bin/true']);
  // The helper's sendmsg fails (ENOTSOCK on /dev/null). C then reports over the sync socket with
  // send(2), which this filter notifies: only because C closed the listener first does the kernel
  // answer ENOSYS, and the report falls back to write(2).
  const plan = planFor(t, bundle, spec, ['execve', 'sendto', 'sendmsg', 'getppid']);
  const { ours, launched } = launchWithSentry(plan, openSync('/dev/null', 'w'));
  t.after(() => closeSync(ours));
  await assert.rejects(launched, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.match(e.message, /^sentry: send the seccomp listener over the sentry socket .*ENOTSOCK/);
    return true;
  });
});
