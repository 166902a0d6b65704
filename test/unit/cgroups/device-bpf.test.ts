// The cgroup v2 device program: checked in a small interpreter of the instructions it uses, and on the real kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE, BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR, deviceProgram, encodeBpf, type BpfInsn,
} from '../../../src/cgroups/device-bpf';
import { parseCgroupMounts } from '../../../src/cgroups/layout';
import { effectiveResources } from '../../../src/cgroups/resources';
import { attachDeviceRules } from '../../../src/cgroups/v2-devices';
import { bpfCgroupDevicePrograms } from '../../../src/native/addon';
import type { DeviceCgroup } from '../../../src/oci/spec';

/** Runs the program on one bpf_cgroup_dev_ctx: only the opcodes deviceProgram emits; anything else throws. */
function run(insns: readonly BpfInsn[], type: number, access: number, major: number, minor: number): number {
  const ctx = [(access << 16) | type, major, minor];
  const r = new Array<number>(11).fill(0);
  for (let pc = 0, steps = 0; steps < 10_000; steps++) {
    const i = insns[pc];
    if (i === undefined) throw new Error(`pc ${pc} is past the end`);
    pc++;
    switch (i.code) {
      case 0x61: r[i.dst] = ctx[(i.off / 4) | 0] ?? 0; assert.equal(i.src, 1, 'loads read the context in r1'); break;
      case 0x54: r[i.dst] = ((r[i.dst] ?? 0) & i.imm) >>> 0; break;
      case 0x74: r[i.dst] = (r[i.dst] ?? 0) >>> i.imm; break;
      case 0xb4: r[i.dst] = i.imm >>> 0; break;
      case 0x05: pc += i.off; break;
      case 0x56: if ((r[i.dst] ?? 0) !== i.imm >>> 0) pc += i.off; break;
      case 0x46: if (((r[i.dst] ?? 0) & i.imm) !== 0) pc += i.off; break;
      case 0x95: return r[0] ?? 0;
      default: throw new Error(`opcode 0x${i.code.toString(16)} is not one the device program uses`);
    }
  }
  throw new Error('no exit within 10000 steps');
}

const C = BPF_DEVCG_DEV_CHAR;
const B = BPF_DEVCG_DEV_BLOCK;
const R = BPF_DEVCG_ACC_READ;
const W = BPF_DEVCG_ACC_WRITE;
const M = BPF_DEVCG_ACC_MKNOD;

test('device program: deny-all then allows lets exactly the allowed devices and accesses through', () => {
  const p = deviceProgram(effectiveResources({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 200, access: 'rw' }] }, []).devices ?? []);
  assert.equal(run(p, C, R | W, 1, 3), 1, '/dev/null is one of the standard devices');
  assert.equal(run(p, C, R | W, 10, 200), 1, 'the allowed tun device');
  assert.equal(run(p, C, M, 10, 200), 1, 'mknod of any char device (runc\'s default "c *:* m")');
  assert.equal(run(p, C, R, 10, 201), 0, 'a neighbour of the allowed device');
  assert.equal(run(p, B, R, 8, 0), 0, 'a disk');
  assert.equal(run(p, B, M, 8, 0), 1, 'mknod of a block device is allowed, opening it is not');
  assert.equal(run(p, C, R, 136, 7), 1, 'a pty (136:*)');
  assert.equal(run(p, C, R | W, 4, 1), 0, 'a host tty');
});

test('device program: the last rule naming a device and an access wins, access kind by access kind', () => {
  const rules: DeviceCgroup[] = [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: false, type: 'c', major: 1, minor: 3, access: 'w' },
  ];
  const p = deviceProgram(rules);
  assert.equal(run(p, C, R, 1, 3), 1);
  assert.equal(run(p, C, W, 1, 3), 0);
  assert.equal(run(p, C, R | W, 1, 3), 0, 'O_RDWR asks read and write at once: one denied kind refuses it');
  assert.equal(run(p, C, M, 1, 3), 1);
  // A later "a" rule resets all before it, as on v1.
  const reset = deviceProgram([...rules, { allow: true, access: 'r' }]);
  assert.equal(run(reset, C, R | W, 1, 3), 1, '"allow a" names every device and access, whatever its access string');
  assert.equal(run(reset, B, W, 8, 0), 1);
  // Wildcards: a rule without major or minor (or with -1) names every number.
  const wild = deviceProgram([{ allow: false, type: 'b', access: 'rw' }, { allow: false, type: 'c', major: 4, minor: -1, access: 'w' }]);
  assert.equal(run(wild, B, R, 259, 1), 0);
  assert.equal(run(wild, B, M, 259, 1), 1, 'mknod is not in the rule\'s access');
  assert.equal(run(wild, C, W, 4, 63), 0);
  assert.equal(run(wild, C, W, 5, 0), 1, 'no rule names it: allowed, as on v1 below an allow-all root');
});

test('device program: encoded as struct bpf_insn, 8 little-endian bytes each', () => {
  const p = deviceProgram([{ allow: false, access: 'rwm' }]);
  const buf = encodeBpf(p);
  assert.equal(buf.length, p.length * 8);
  // The first instruction: r2 = *(u32 *)(r1 + 0).
  assert.deepEqual([...buf.subarray(0, 8)], [0x61, 0x12, 0, 0, 0, 0, 0, 0]);
  // The last two: r0 = 1; exit.
  assert.deepEqual([...buf.subarray(buf.length - 16)], [0xb4, 0x00, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
});

/** A cgroup2 mount of this host (pure v2 at /sys/fs/cgroup, or the unified one of a hybrid host). */
function cgroup2Mount(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  return parseCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8')).find((m) => m.fstype === 'cgroup2')?.mountpoint;
}
const kernelSkip = process.platform !== 'linux' ? 'not Linux' : process.getuid?.() !== 0 ? 'needs root (it loads BPF programs and makes cgroups)'
  : cgroup2Mount() === undefined ? 'no cgroup2 file system here: neither /sys/fs/cgroup nor a unified mount is cgroup2' : false;

test('kernel: a write to a denied device fails in the cgroup, a read of an allowed one works, a device no rule allows is refused; an update replaces the program', { skip: kernelSkip }, () => {
  const mount = cgroup2Mount() ?? '';
  const dir = join(mount, `stockade-devtest-${process.pid}`);
  mkdirSync(dir);
  try {
    const sh = (script: string): { status: number | null; out: string } => {
      const r = spawnSync('/bin/sh', ['-c', `echo $$ > ${dir}/cgroup.procs && ${script}`], { encoding: 'utf8' });
      return { status: r.status, out: r.stdout + r.stderr };
    };
    // Without a program the cgroup reaches both devices, so a refusal below is the program's.
    assert.equal(sh(': < /dev/kmsg').status, 0, 'no program yet: /dev/kmsg (1:11) opens');
    assert.equal(sh('echo x > /dev/null').status, 0, 'no program yet: /dev/null (1:3) takes a write');
    // The spec's rules as a container gets them (deny all, then the standard devices), and a last rule refusing writes to /dev/null.
    const standard = effectiveResources({ devices: [{ allow: false, access: 'rwm' }] }, []).devices ?? [];
    attachDeviceRules(dir, [...standard, { allow: false, type: 'c', major: 1, minor: 3, access: 'w' }]);
    const write = sh('echo x > /dev/null');
    assert.notEqual(write.status, 0, 'a write to /dev/null got through');
    assert.match(write.out, /Operation not permitted/);
    assert.equal(sh('cat /dev/null').status, 0, 'a read of /dev/null is allowed');
    assert.match(sh(': < /dev/kmsg').out, /Operation not permitted/, '/dev/kmsg is in no allow rule');
    // An update replaces the program: one program attached, and /dev/null takes writes again.
    attachDeviceRules(dir, standard);
    const fd = openSync(dir, 'r');
    try {
      assert.equal(bpfCgroupDevicePrograms(fd).length, 1);
    } finally {
      closeSync(fd);
    }
    assert.equal(sh('echo x > /dev/null').status, 0, 'the old program is still attached');
    assert.match(sh(': < /dev/kmsg').out, /Operation not permitted/, 'the new program still refuses /dev/kmsg');
  } finally {
    if (existsSync(dir)) rmdirSync(dir);
  }
});
