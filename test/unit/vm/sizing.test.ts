// How a pod's sandbox annotations (containerd's CRI) size the pod's VM, and how update moves a VM's RAM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_GUEST_MIB, MIN_GUEST_MIB, POD_GUEST_OWN_MIB, balloonTarget, podVmSize } from '../../../src/vm/sizing';

const MiB = 1024 * 1024;
const mem = 'io.kubernetes.cri.sandbox-memory';
const quota = 'io.kubernetes.cri.sandbox-cpu-quota';
const period = 'io.kubernetes.cri.sandbox-cpu-period';

test('no size annotations: the sandbox\'s own config sizes the VM', () => {
  assert.equal(podVmSize(undefined), undefined);
  assert.equal(podVmSize({ 'io.kubernetes.cri.container-type': 'sandbox' }), undefined);
});

test('the pod\'s memory plus the guest\'s own share; its CPU quota over the period, rounded up', () => {
  assert.deepEqual(podVmSize({ [mem]: String(300 * MiB), [quota]: '250000', [period]: '100000' }), { memoryMiB: 300 + POD_GUEST_OWN_MIB, cpus: 2 });
  assert.deepEqual(podVmSize({ [mem]: String(10 * MiB), [quota]: '50000', [period]: '100000' }), { memoryMiB: MIN_GUEST_MIB, cpus: 1 });
  // A quota without a period is over containerd's default 100 ms.
  assert.equal(podVmSize({ [quota]: '100001' })?.cpus, 2);
});

test('"0" is no limit, as containerd writes it for a pod without limits: the default VM', () => {
  assert.deepEqual(podVmSize({ [mem]: '0', [quota]: '0', [period]: '100000' }), { memoryMiB: DEFAULT_GUEST_MIB, cpus: 1 });
  assert.deepEqual(podVmSize({ [mem]: '-1', [quota]: '-1' }), { memoryMiB: DEFAULT_GUEST_MIB, cpus: 1 });
});

test('vCPUs are at most the host\'s', () => {
  assert.ok((podVmSize({ [quota]: String(1000 * 100000) })?.cpus ?? 0) <= (require('node:os') as typeof import('node:os')).cpus().length);
});

test('a value that is not a whole number is refused naming the annotation', () => {
  assert.throws(() => podVmSize({ [mem]: '256Mi' }), /annotations\["io\.kubernetes\.cri\.sandbox-memory"\]: "256Mi" is not a whole number/);
  assert.throws(() => podVmSize({ [mem]: '0', [period]: '1e5' }), /sandbox-cpu-period/);
});

test('update\'s balloon target: the limit (at least the smallest guest), at most the RAM booted with; all of it without a limit', () => {
  assert.equal(balloonTarget({ memory: { limit: 200 * MiB } }, 512), 200);
  assert.equal(balloonTarget({ memory: { limit: 200 * MiB + 1 } }, 512), 201);
  assert.equal(balloonTarget({ memory: { limit: 16 * MiB } }, 512), MIN_GUEST_MIB);
  assert.equal(balloonTarget({ memory: { limit: 2048 * MiB } }, 512), 512);
  assert.equal(balloonTarget({ memory: { limit: -1 } }, 512), 512);
  assert.equal(balloonTarget({ cpu: { quota: 50000 } }, 384), 384);
  assert.equal(balloonTarget(undefined, 256), 256);
});
