// VM templates (issue 18) end to end: built once under a lock, clones that are not twins, the
// template's memory sealed against a clone's QEMU, and bad templates refused, thrown away, rebuilt.
//
// Each build is a TCG boot (tens of seconds on this loaded machine): the tests share one
// template in a private directory, and only the fault test builds a second.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmError } from '../../src/vm/errors';
import { buildTemplate, restoreVm, startVm, templateFault, templateKey, type Template } from '../../src/vm/template';
import { vmmUnavailable } from '../../src/vm/vmm';
import { makeRootfs, rootfsUnavailable } from '../helpers/rootfs';

const skip = vmmUnavailable() ?? rootfsUnavailable();

const parent = mkdtempSync(join(tmpdir(), 'stockade-vm-template-test-'));
const templateDir = join(parent, 'templates');
const rootfs = join(parent, 'rootfs');
let template: Template | undefined;

test.after(() => rmSync(parent, { recursive: true, force: true }));

function holderPid(t: Template): number {
  return Number(readFileSync(join(templateDir, `${t.key}.holder`), 'utf8'));
}

test('two builders of a missing template at once build it once', { skip, timeout: 600000 }, async () => {
  makeRootfs(rootfs);
  const [a, b] = await Promise.all([buildTemplate({ templateDir }), buildTemplate({ templateDir })]);
  assert.equal(a.key, b.key);
  assert.deepEqual([a.built, b.built].sort(), [false, true], 'exactly one of the two built it');
  assert.equal(templateFault(a.dir, { key: a.key, inputs: a.manifest.inputs }), undefined);
  assert.deepEqual(readdirSync(templateDir).filter((n) => n.startsWith('.build-')), [], 'no build directory left');
  // Every input is in the key: another memory size is another template.
  assert.notEqual(await templateKey({ memoryMiB: 192 }), a.key);
  assert.notEqual(await templateKey({ cpus: 2 }), a.key);
  assert.equal(await templateKey({}), a.key);
  template = a;
});

test('clones of one template are not twins: own random bytes, hostname and clock; the same root and kernel', { skip, timeout: 300000 }, async () => {
  const t = template;
  assert.ok(t !== undefined, 'the build test made the template');
  const probe = ['sh', '-c', 'cat /proc/sys/kernel/random/uuid; hostname; date +%s; uname -r; cat /shared'];
  writeFileSync(join(rootfs, 'shared'), 'from the host\n');
  // Without REFRESH the clones are twins: this is what the request prevents.
  const twins: string[][] = [];
  for (let i = 0; i < 2; i++) {
    const vm = await restoreVm({ rootfs, template: t, twin: true });
    try {
      twins.push((await vm.run({ args: probe })).stdout.toString().split('\n'));
    } finally {
      await vm.destroy();
    }
  }
  // (Their random bytes were equal too in every run seen; not asserted: a clone whose guest
  // clock passes the CRNG's reseed interval before the read reseeds itself from interrupt timing.)
  assert.deepEqual([twins[0]![1], twins[1]![1]], ['(none)', '(none)'], 'unrefreshed clones keep the template\'s (unset) name');
  const clones = await Promise.all([0, 1].map(() => restoreVm({ rootfs, template: t })));
  try {
    const outs = await Promise.all(clones.map(async (vm) => {
      const r = await vm.run({ args: probe });
      assert.equal(r.code, 0, r.stderr.toString());
      return r.stdout.toString().split('\n');
    }));
    const [a, b] = outs as [string[], string[]];
    assert.match(a[0]!, /^[0-9a-f-]{36}$/);
    assert.notEqual(a[0], b[0], 'two clones read different random bytes');
    assert.notEqual(a[0], twins[0]![0]);
    assert.notEqual(a[1], b[1], 'each clone has its own hostname');
    for (const o of [a, b]) {
      assert.ok(Math.abs(Number(o[2]) - Date.now() / 1000) < 30, `the clone's clock was stepped to the host's (${o[2]})`);
      assert.equal(o[3], t.assets.release);
      assert.equal(o[4], 'from the host');
    }
    // Writes reach the host's directory; each clone's own memory is its own.
    await clones[0]!.run({ args: ['sh', '-c', 'echo one > /written'] });
    assert.equal(readFileSync(join(rootfs, 'written'), 'utf8'), 'one\n');
    // The clones map the template's memory: the holder's sealed memfd, not a copy each.
    for (const vm of clones) {
      const maps = vm.hostProcesses.map((p) => { try { return readFileSync(`/proc/${p}/maps`, 'utf8'); } catch { return ''; } }).join('');
      assert.match(maps, new RegExp(`memfd:stockade-template-${t.key}`), 'QEMU maps the template memfd');
    }
  } finally {
    await Promise.all(clones.map((vm) => vm.destroy()));
  }
});

test('a clone\'s QEMU cannot change the template its siblings map: the memfd is sealed', { skip, timeout: 60000 }, () => {
  const t = template;
  assert.ok(t !== undefined);
  const pid = holderPid(t);
  assert.equal(readlinkSync(`/proc/${pid}/fd/3`), `/memfd:stockade-template-${t.key} (deleted)`);
  // Even root, opening it read-write as QEMU does, cannot write a byte into it.
  const fd = openSync(`/proc/${pid}/fd/3`, 'r+');
  try {
    assert.throws(() => writeSync(fd, Buffer.from('x'), 0, 1, 4096), /EPERM/);
  } finally {
    closeSync(fd);
  }
  // And the file on disk is root's and read-only (the clones never open it: they map the memfd).
  const st = statSync(join(t.dir, 'ram'));
  assert.equal(st.uid, 0);
  assert.equal(st.mode & 0o777, 0o444);
});

test('a corrupt, foreign or half-written template is refused, thrown away and rebuilt; never restored', { skip, timeout: 900000 }, async () => {
  const t = template;
  assert.ok(t !== undefined);
  // Corrupt device state: refused before QEMU starts.
  const state = join(t.dir, 'state');
  const good = readFileSync(state);
  const bad = Buffer.from(good);
  const mid = bad.length >> 1;
  bad.writeUInt8(bad.readUInt8(mid) ^ 0xff, mid);
  writeFileSync(state, bad);
  await assert.rejects(restoreVm({ rootfs, template: t }), (e: unknown) => e instanceof VmError && e.reason === 'TEMPLATE' && /state does not match/.test(e.message));
  writeFileSync(state, good);
  // Made by another QEMU: the manifest's inputs no longer match this host's.
  const manifestPath = join(t.dir, 'manifest.json');
  const manifest = readFileSync(manifestPath, 'utf8');
  const other = JSON.parse(manifest) as { inputs: Record<string, unknown> };
  other.inputs['qemu'] = '/usr/bin/qemu-system-x86_64:1:2:3';
  writeFileSync(manifestPath, JSON.stringify(other));
  assert.match(templateFault(t.dir, { key: t.key, inputs: t.manifest.inputs }) ?? '', /another qemu/);
  await assert.rejects(restoreVm({ rootfs, template: { ...t, manifest: JSON.parse(manifest) as Template['manifest'] } }), /another qemu/);
  writeFileSync(manifestPath, manifest);
  // Corrupt memory: caught when a holder loads it (the running one is stopped first).
  // (The kill is asynchronous: until the holder is gone, its verified memfd is what a restore
  // takes, which is safe, but not this check.)
  const holder = holderPid(t);
  process.kill(holder, 'SIGKILL');
  for (let i = 0; i < 500 && ((): boolean => { try { readlinkSync(`/proc/${holder}/fd/3`); return true; } catch { return false; } })(); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const ram = openSync(join(t.dir, 'ram'), 'r+');
  writeSync(ram, Buffer.from([0x5a]), 0, 1, 0x100000 + 17);
  closeSync(ram);
  await assert.rejects(restoreVm({ rootfs, template: t }), (e: unknown) => e instanceof VmError && e.reason === 'TEMPLATE' && /memory does not match/.test(e.message));
  // Half written when the machine stopped: a build directory of the key, never taken for the
  // template (which appears only by a rename once complete), and cleared by the next build.
  const half = join(templateDir, `.build-${t.key}-dead`);
  mkdirSync(half);
  writeFileSync(join(half, 'state'), good.subarray(0, 100));
  assert.match(templateFault(half, { key: t.key, inputs: t.manifest.inputs }) ?? '', /manifest cannot be read/);
  // startVm throws the corrupt one away and builds anew, then starts from the new one.
  const vm = await startVm({ rootfs, templateDir });
  try {
    assert.equal((await vm.run({ args: ['cat', '/shared'] })).stdout.toString(), 'from the host\n');
  } finally {
    await vm.destroy();
  }
  assert.notEqual((JSON.parse(readFileSync(manifestPath, 'utf8')) as { builtAt: string }).builtAt, t.manifest.builtAt, 'rebuilt');
  assert.equal(existsSync(half), false, 'the half-written build was cleared');
});
