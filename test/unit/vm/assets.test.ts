// The guest's boot assets: the cpio writer, module ordering from .modinfo, the accelerator probe, the VMM's command line, the generated header.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseAccel } from '../../../src/vm/accel';
import { agentBinary, buildInitramfs, defaultCacheDir, ensureGuestAssets } from '../../../src/vm/assets';
import { readCpio, writeCpio } from '../../../src/vm/cpio';
import { modinfo, resolveModules, stripSignature } from '../../../src/vm/modules';
import { extractVmlinux, hasPvhNote, lz4Block } from '../../../src/vm/vmlinux';
import { SHARE_SCRIPT, jailedQemu, rbindBinary, jailedVirtiofsd, qemuArgs } from '../../../src/vm/vmm';
import { renderAgentHeader } from '../../../src/tools/gen-agent-header';
import { packageRoot } from '../../../src/native/paths';

test('cpio: newc records in path order, padded to 4, device nodes, trailer; same input, same bytes', () => {
  const entries = [
    { kind: 'file' as const, path: 'init', mode: 0o755, data: Buffer.from('#!x') },
    { kind: 'dir' as const, path: 'dev', mode: 0o755 },
    { kind: 'chardev' as const, path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
    { kind: 'symlink' as const, path: 'bin', target: 'usr/bin' },
  ];
  const a = writeCpio(entries);
  assert.ok(a.equals(writeCpio([...entries].reverse())));
  assert.equal(a.length % 4, 0);
  const back = readCpio(a);
  assert.deepEqual(back.map((e) => e.path), ['bin', 'dev', 'dev/console', 'init']);
  assert.equal(back[0]!.mode, 0o120777);
  assert.equal(back[0]!.data.toString(), 'usr/bin');
  assert.equal(back[2]!.mode, 0o020600);
  assert.deepEqual([back[2]!.rdevMajor, back[2]!.rdevMinor], [5, 1]);
  assert.equal(back[3]!.data.toString(), '#!x');
  assert.throws(() => writeCpio([{ kind: 'dir', path: 'a/../b', mode: 0o755 }]), /not a clean path/);
  assert.throws(() => writeCpio([{ kind: 'dir', path: 'a', mode: 0o755 }, { kind: 'dir', path: '/a', mode: 0o755 }]), /given twice/);
});

test('cpio: cpio(1) lists the archive as we meant it', { skip: hasCpio() ? undefined : 'cpio(1) is not installed' }, () => {
  const a = writeCpio([{ kind: 'dir', path: 'lib', mode: 0o755 }, { kind: 'file', path: 'lib/x.ko', mode: 0o644, data: Buffer.alloc(5, 1) }]);
  const listing = execFileSync('cpio', ['-t', '--quiet'], { input: a, encoding: 'utf8' });
  assert.deepEqual(listing.trim().split('\n'), ['lib', 'lib/x.ko']);
});

function hasCpio(): boolean {
  try {
    execFileSync('cpio', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// A fake module: an object file whose .modinfo section says what a real one would.
function fakeModule(dir: string, name: string, depends: string): void {
  const src = join(dir, `${name}.c`);
  writeFileSync(src, `const char info[] __attribute__((section(".modinfo"), used)) = "license=GPL\\0depends=${depends}\\0name=${name}";\n`);
  execFileSync('gcc', ['-c', '-o', join(dir, `${name}.ko`), src]);
  rmSync(src);
}

test('modules: ordered after what their depends= names, cycles and missing ones refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-mods-'));
  try {
    mkdirSync(join(dir, 'kernel', 'fs'), { recursive: true });
    fakeModule(join(dir, 'kernel'), 'virtio_ring', '');
    fakeModule(join(dir, 'kernel'), 'virtio', 'virtio_ring');
    fakeModule(join(dir, 'kernel', 'fs'), 'fuse', '');
    fakeModule(join(dir, 'kernel', 'fs'), 'virtiofs', 'fuse,virtio,virtio_ring');
    fakeModule(join(dir, 'kernel'), 'loop_a', 'loop_b');
    fakeModule(join(dir, 'kernel'), 'loop_b', 'loop_a');
    assert.equal(modinfo(readFileSync(join(dir, 'kernel', 'virtio.ko')), 'virtio').get('depends'), 'virtio_ring');
    assert.deepEqual(resolveModules(dir, ['virtiofs']).map((m) => m.name), ['fuse', 'virtio_ring', 'virtio', 'virtiofs']);
    assert.throws(() => resolveModules(dir, ['loop_a']), /dependency cycle/);
    assert.throws(() => resolveModules(dir, ['virtio_console']), /virtio_console \(needed by the guest\) is not in/);
    writeFileSync(join(dir, 'kernel', 'xz.ko'), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]));
    assert.throws(() => resolveModules(dir, ['xz']), /not a little-endian ELF64/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('initramfs: the agent as /init, stockade-init, the modules and their load order (the network\'s apart), nothing else', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-mods-'));
  try {
    fakeModule(dir, 'virtio_ring', '');
    fakeModule(dir, 'virtio', 'virtio_ring');
    fakeModule(dir, 'failover', '');
    fakeModule(dir, 'virtio_net', 'virtio,failover');
    const kernel = { vmlinuz: '/nonexistent', vmlinux: undefined, release: 'r', identity: 'test', modules: resolveModules(dir, ['virtio', 'virtio_net']) };
    const entries = readCpio(buildInitramfs(kernel, Buffer.from('AGENT'), Buffer.from('INIT')));
    assert.deepEqual(entries.map((e) => e.path), [
      'dev', 'dev/console', 'init', 'lib', 'lib/modules', 'lib/modules/failover.ko', 'lib/modules/load-order', 'lib/modules/net-order',
      'lib/modules/virtio.ko', 'lib/modules/virtio_net.ko', 'lib/modules/virtio_ring.ko', 'proc', 'run', 'sbin', 'sbin/stockade-init', 'sys',
    ]);
    // The network's modules load at the first NET_LINK, after (again) the boot's: EEXIST is no failure there.
    assert.equal(entries.find((e) => e.path === 'lib/modules/net-order')?.data.toString(),
      '/lib/modules/virtio_ring.ko\n/lib/modules/virtio.ko\n/lib/modules/failover.ko\n/lib/modules/virtio_net.ko\n');
    const get = (p: string): Buffer => entries.find((e) => e.path === p)!.data;
    assert.equal(get('init').toString(), 'AGENT');
    assert.equal(get('sbin/stockade-init').toString(), 'INIT');
    assert.equal(get('lib/modules/load-order').toString(), '/lib/modules/virtio_ring.ko\n/lib/modules/virtio.ko\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('accelerator: kvm_pvm rules KVM out; a standard KVM module with a usable /dev/kvm rules it in', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-sysmod-'));
  const saved = process.env['STOCKADE_VM_ACCEL'];
  delete process.env['STOCKADE_VM_ACCEL'];
  try {
    mkdirSync(join(dir, 'kvm_intel'));
    const dev = join(dir, 'kvm');
    writeFileSync(dev, '');
    assert.equal(chooseAccel(dir, dev).accel, 'kvm');
    mkdirSync(join(dir, 'kvm_pvm'));
    const c = chooseAccel(dir, dev);
    assert.equal(c.accel, 'tcg');
    assert.match(c.reason, /kvm_pvm/);
    assert.equal(chooseAccel(join(dir, 'none'), dev).accel, 'tcg');
    process.env['STOCKADE_VM_ACCEL'] = 'kvm';
    assert.equal(chooseAccel(dir, dev).accel, 'kvm');
  } finally {
    if (saved === undefined) delete process.env['STOCKADE_VM_ACCEL'];
    else process.env['STOCKADE_VM_ACCEL'] = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('VMM: no default devices, no network, no disk; modern virtio-mmio, shared memory, seccomp sandbox, jailed', () => {
  const c = { assets: { kernel: '/k', initramfs: '/i', release: 'r', key: 'k' }, accel: 'tcg' as const, memoryMiB: 256, cpus: 1, user: { uid: 1879048193, gid: 1879048193 } };
  const args = qemuArgs(c);
  const joined = args.join(' ');
  for (const want of ['-nodefaults', '-no-user-config', '-no-reboot', 'virtio-mmio.force-legacy=false', 'memory-backend-memfd,id=mem,size=256M,share=on', 'socket,id=agent,fd=3', 'vhost-user-fs-device,chardev=fs,tag=rootfs']) {
    assert.ok(args.includes(want) || joined.includes(want), `missing ${want}`);
  }
  assert.match(args[args.indexOf('-sandbox') + 1]!, /^on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny$/);
  assert.doesNotMatch(joined, /-netdev|-nic|-drive|-blockdev|-virtfs|-fsdev|-monitor|-qmp|-gdb|path=/);
  // The one monitor is QMP on the host's socketpair (fd 5), for the balloon.
  assert.deepEqual(args.filter((a, i) => args[i - 1] === '-mon' || args[i - 1] === '-chardev'), ['socket,id=agent,fd=3', 'socket,id=fs,fd=4', 'socket,id=qmp,fd=5', 'chardev=qmp,mode=control']);
  const jail = jailedQemu(c, '/run/vm/qemu-root');
  const joinedJail = jail.join(' ');
  assert.ok(joinedJail.startsWith(`/usr/bin/setpriv --pdeathsig KILL /usr/bin/unshare --net --ipc --uts --pid --fork --kill-child --mount --propagation private ${rbindBinary()} `), joinedJail);
  // The jail's mounts, its chroot and the next wrapper, all in stockade-rbind's one run.
  const r = '/run/vm/qemu-root';
  assert.deepEqual(jail.slice(jail.indexOf(rbindBinary()) + 1, jail.indexOf('--') + 1), [
    '--ro', '/usr', `${r}/usr`, '--ro', '/k', `${r}/boot/kernel`, '--ro', '/i', `${r}/boot/initramfs`,
    '--bind', '/dev/null', `${r}/dev/null`, '--bind', '/dev/zero', `${r}/dev/zero`, '--bind', '/dev/urandom', `${r}/dev/urandom`,
    '--proc', `${r}/proc`, '--chroot', r, '--',
  ]);
  assert.match(joinedJail, /\/usr\/bin\/setpriv --reuid=1879048193 --regid=1879048193 --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs --pdeathsig KILL \S*qemu-system-x86_64 /);
  // Inside the jail QEMU names the kernel and initramfs by their jail paths.
  assert.equal(jail[jail.indexOf('-kernel') + 1], '/boot/kernel');
  assert.equal(jail[jail.indexOf('-initrd') + 1], '/boot/initramfs');
  assert.match(jailedVirtiofsd('/root', '/run/x.sock').join(' '), /sandbox=namespace .*modcaps=-mknod:-setfcap/);
  // The share's binds: made in virtiofsd's own mount namespace, then virtiofsd serves the directory.
  const fs = jailedVirtiofsd('/run/vm/share', '/run/x.sock', [{ source: '/srv/rootfs', name: 'root', readonly: true }, { source: '/etc/hosts', name: 'b0', readonly: false }]);
  assert.deepEqual(fs.slice(0, 9), ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '/usr/bin/unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c']);
  assert.equal(fs[9], SHARE_SCRIPT);
  assert.deepEqual(fs.slice(10, fs.indexOf('--') + 1), ['sh', '/run/vm/share', rbindBinary(), '/srv/rootfs', 'root', '1', '/etc/hosts', 'b0', '0', '--']);
  assert.match(fs[fs.indexOf('--') + 1] ?? '', /virtiofsd$/);
  assert.ok(fs.includes('source=/run/vm/share'));
  assert.throws(() => qemuArgs({ ...c, memoryMiB: 1 }), /out of range/);
});

test('the generated agent header is the one the build compiled', () => {
  assert.equal(readFileSync(join(packageRoot(), 'native', 'include', 'stockade-agent.h'), 'utf8'), renderAgentHeader());
  assert.match(renderAgentHeader(), /#define STK_AGENT_H_SPAWN 0x3u/);
});

test('lz4: literals, overlapping matches and bounds', () => {
  // "abcabcabcabc": 3 literals, then a 9-byte match at offset 3 (overlapping its own output).
  const block = Buffer.from([0x35, 0x61, 0x62, 0x63, 0x03, 0x00]);
  const out = Buffer.alloc(12);
  assert.equal(lz4Block(block, 0, block.length, out, 0), 12);
  assert.equal(out.toString(), 'abcabcabcabc');
  // An offset reaching before the start of the output is refused, not read out of bounds.
  assert.throws(() => lz4Block(Buffer.from([0x10, 0x61, 0x05, 0x00]), 0, 4, Buffer.alloc(8), 0), /before the output/);
  assert.throws(() => lz4Block(Buffer.from([0xf0]), 0, 1, Buffer.alloc(8), 0), /runs past/);
  assert.throws(() => extractVmlinux(Buffer.alloc(4096)), /not a bzImage/);
});

const cachedKernel = ((): string | undefined => {
  try {
    const dir = join('/var/lib/stockade/vm/kernels');
    // The cloud kernel's: the cache may hold others (a user's, or Debian's generic one, whose
    // bzImage is not LZ4-compressed and is refused as such).
    const k = readdirSync(dir).find((d) => d.includes('-cloud-') && existsSync(join(dir, d, 'vmlinuz')));
    return k === undefined ? undefined : join(dir, k, 'vmlinuz');
  } catch {
    return undefined;
  }
})();

test('vmlinux: the cloud kernel\'s bzImage gives an ELF with the PVH note QEMU boots', { skip: cachedKernel === undefined ? 'no cached cloud kernel (the vm integration test fetches one)' : undefined }, () => {
  const elf = extractVmlinux(readFileSync(cachedKernel!));
  assert.equal(elf.readUInt32BE(0), 0x7f454c46);
  assert.ok(hasPvhNote(elf));
  assert.equal(hasPvhNote(Buffer.from(elf.subarray(0, 64))), false);
});

test('module signatures are stripped whole; an unsigned module is left as it is', () => {
  const body = Buffer.from('\x7fELF...module body');
  const sig = Buffer.alloc(5, 0xaa);
  const info = Buffer.alloc(12);
  info.writeUInt32BE(sig.length, 8);
  const signed = Buffer.concat([body, sig, info, Buffer.from('~Module signature appended~\n')]);
  assert.ok(stripSignature(signed).equals(body));
  assert.ok(stripSignature(body).equals(body));
  info.writeUInt32BE(1 << 20, 8);
  assert.throws(() => stripSignature(Buffer.concat([body, sig, info, Buffer.from('~Module signature appended~\n')])), /larger than the module/);
});

// The guest's key is remembered by its inputs' stat stamp (hashing them cost every vm create
// 0.3-0.5 s). The attack: an input changed in place, same size and mtime put back, must not be
// served the guest of its old content.
const guestSkip = process.getuid?.() !== 0 ? 'needs root (the shared guest cache)' : undefined;
test('the guest key memo: the same inputs are not hashed again; an input changed in place gets its own guest', { skip: guestSkip }, () => {
  const real = ensureGuestAssets();
  const dir = mkdtempSync(join(tmpdir(), 'stockade-assets-memo-'));
  try {
    const cache = join(dir, 'cache');
    mkdirSync(cache);
    // The kernels already fetched, without another download.
    symlinkSync(join(defaultCacheDir(), 'kernels'), join(cache, 'kernels'));
    const agent = join(dir, 'agent');
    copyFileSync(agentBinary(), agent);
    const first = ensureGuestAssets({ cacheDir: cache, agent });
    assert.equal(first.key, real.key);
    const memo = JSON.parse(readFileSync(join(cache, 'guests', 'keys.json'), 'utf8')) as Record<string, string>;
    assert.deepEqual(Object.values(memo), [first.key]);
    // Served from the memo: a key put there by hand comes back without a hash.
    const stamp = Object.keys(memo)[0]!;
    const fake = 'f'.repeat(32);
    mkdirSync(join(cache, 'guests', fake));
    writeFileSync(join(cache, 'guests', fake, 'initramfs.cpio'), '');
    writeFileSync(join(cache, 'guests', 'keys.json'), JSON.stringify({ [stamp]: fake }));
    assert.equal(ensureGuestAssets({ cacheDir: cache, agent }).key, fake);
    // One byte of the agent changed, its size and times put back: hashed again, another guest.
    const before = statSync(agent);
    const bytes = readFileSync(agent);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
    writeFileSync(agent, bytes);
    utimesSync(agent, before.atime, before.mtime);
    const changed = ensureGuestAssets({ cacheDir: cache, agent });
    assert.notEqual(changed.key, first.key);
    assert.notEqual(changed.key, fake);
    assert.ok(existsSync(changed.initramfs));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
