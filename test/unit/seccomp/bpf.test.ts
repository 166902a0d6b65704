// The assembler's long jumps and the interpreter's checks, on hand-written programs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Assembler, decodeProgram, disassemble, encodeProgram, NEXT } from '../../../src/seccomp/bpf';
import { BPF_JEQ, BPF_JGT } from '../../../src/seccomp/constants';
import { BpfError, checkProgram, runFilter } from '../../../src/seccomp/interpreter';

test('encodes struct sock_filter little-endian, 8 bytes each', () => {
  const buf = encodeProgram([{ code: 0x15, jt: 1, jf: 2, k: 0xc000003e }, { code: 0x06, jt: 0, jf: 0, k: 0x7fff0000 }]);
  assert.equal(buf.toString('hex'), '150001023e0000c0' + '060000000000ff7f');
  assert.deepEqual(decodeProgram(buf), [{ code: 0x15, jt: 1, jf: 2, k: 0xc000003e }, { code: 0x06, jt: 0, jf: 0, k: 0x7fff0000 }]);
  assert.throws(() => decodeProgram(Buffer.alloc(7)), RangeError);
});

test('far jump targets get trampolines: ja, or a copy of the ret they land on', () => {
  const asm = new Assembler();
  const far = asm.label();
  const farRet = asm.label();
  asm.ldAbs(0);
  asm.jump(BPF_JEQ, 1, far, NEXT);
  asm.jump(BPF_JEQ, 2, NEXT, farRet);
  for (let i = 0; i < 300; i++) asm.ret(1000 + i);
  asm.bind(far);
  asm.ldAbs(16);
  asm.ret(7);
  asm.bind(farRet);
  asm.ret(9);
  const insns = asm.assemble();
  checkProgram(insns);
  assert.equal(insns[2]?.code, 0x05, 'ja trampoline after the first jump');
  assert.equal(insns[4]?.code, 0x06, 'the second jump\'s target is a ret, copied inline');
  assert.equal(insns[4]?.k, 9);
  assert.equal(runFilter(insns, { nr: 1, arch: 0 }), 7);
  assert.equal(runFilter(insns, { nr: 3, arch: 0 }), 9);
  assert.equal(runFilter(insns, { nr: 2, arch: 0 }), 1000);
  assert.match(disassemble(insns)[1] ?? '', /^001: jeq #0x1 jt 002 jf 003$/);
});

test('near jumps stay single instructions', () => {
  const asm = new Assembler();
  const l = asm.label();
  asm.ldAbs(0);
  asm.jump(BPF_JGT, 5, l, NEXT);
  for (let i = 0; i < 255; i++) asm.ret(i);
  asm.bind(l);
  asm.ret(0xffff);
  const insns = asm.assemble();
  assert.equal(insns.length, 258);
  assert.equal(insns[1]?.jt, 255);
  assert.equal(runFilter(insns, { nr: 6, arch: 0 }), 0xffff);
});

test('checkProgram refuses what the kernel refuses', () => {
  const ret = { code: 0x06, jt: 0, jf: 0, k: 0 };
  const bad: [string, Parameters<typeof checkProgram>[0]][] = [
    ['empty', []],
    ['unaligned load', [{ code: 0x20, jt: 0, jf: 0, k: 2 }, ret]],
    ['load past seccomp_data', [{ code: 0x20, jt: 0, jf: 0, k: 64 }, ret]],
    ['byte load', [{ code: 0x30, jt: 0, jf: 0, k: 0 }, ret]],
    ['mod', [{ code: 0x94, jt: 0, jf: 0, k: 3 }, ret]],
    ['jump past the end', [{ code: 0x15, jt: 1, jf: 0, k: 0 }, ret]],
    ['ja past the end', [{ code: 0x05, jt: 0, jf: 0, k: 1 }, ret]],
    ['no final ret', [ret, { code: 0x20, jt: 0, jf: 0, k: 0 }]],
    ['too long', Array.from({ length: 4097 }, () => ret)],
  ];
  for (const [why, prog] of bad) assert.throws(() => checkProgram(prog), BpfError, why);
});

test('the interpreter runs ALU, scratch memory and X like the kernel', () => {
  const prog = [
    { code: 0x20, jt: 0, jf: 0, k: 16 }, // ld args[0].lo
    { code: 0x04, jt: 0, jf: 0, k: 3 }, // add #3
    { code: 0x02, jt: 0, jf: 0, k: 0 }, // st M[0]
    { code: 0x01, jt: 0, jf: 0, k: 2 }, // ldx #2
    { code: 0x2c, jt: 0, jf: 0, k: 0 }, // mul x
    { code: 0x74, jt: 0, jf: 0, k: 1 }, // rsh #1
    { code: 0x61, jt: 0, jf: 0, k: 0 }, // ldx M[0]
    { code: 0x1d, jt: 0, jf: 1, k: 0 }, // jeq x
    { code: 0x06, jt: 0, jf: 0, k: 1 },
    { code: 0x16, jt: 0, jf: 0, k: 0 }, // ret a
  ];
  assert.equal(runFilter(prog, { nr: 0, arch: 0, args: [4n] }), 1); // ((4+3)*2)>>1 == 7 == M[0]
  const readFirst = [{ code: 0x60, jt: 0, jf: 0, k: 1 }, { code: 0x16, jt: 0, jf: 0, k: 0 }];
  assert.throws(() => runFilter(readFirst, { nr: 0, arch: 0 }), /M\[1\] read before it was written/);
});
