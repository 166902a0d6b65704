// OCI device rules -> a cgroup v2 device program (eBPF, BPF_PROG_TYPE_CGROUP_DEVICE), as runc and crun enforce them.
//
// cgroup v2 has no devices.allow/devices.deny: the kernel runs the eBPF programs attached to the
// cgroup (BPF_CGROUP_DEVICE) on every device access (open, mknod) and refuses it when one returns 0.
// The program reads struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }, where
// access_type is (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*.
//
// The rules mean what they mean on v1, where the same list is written to devices.allow and
// devices.deny in order: for each kind of access asked for (mknod, read, write), the last rule
// that names the device and that access decides; a rule of type "a" names every device and every
// access, so a later "deny a" resets everything before it. A device no rule names is allowed
// (on v1 a new cgroup starts with its parent's list, the root's allowing everything; on v2 the
// programs of the parent cgroups still run, and each must allow). An access that asks for several
// kinds at once (open O_RDWR asks read|write) is allowed only if every kind is. Checking kind by
// kind, rather than matching whole rules, keeps "allow c 1:3 rwm" then "deny c 1:3 w" from
// letting an O_RDWR open through.
import type { DeviceCgroup } from '../oci/spec';

// struct bpf_insn opcodes (linux/bpf.h, linux/bpf_common.h).
const BPF_LDX_MEM_W = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const BPF_ALU32_AND_K = 0x54; // BPF_ALU | BPF_AND | BPF_K
const BPF_ALU32_RSH_K = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const BPF_ALU32_MOV_K = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const BPF_JMP_JA = 0x05; // BPF_JMP | BPF_JA
const BPF_JMP32_JNE_K = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K: 32-bit compare, so no sign extension of imm
const BPF_JMP32_JSET_K = 0x46; // BPF_JMP32 | BPF_JSET | BPF_K
const BPF_EXIT = 0x95; // BPF_JMP | BPF_EXIT

export const BPF_DEVCG_ACC_MKNOD = 1;
export const BPF_DEVCG_ACC_READ = 2;
export const BPF_DEVCG_ACC_WRITE = 4;
export const BPF_DEVCG_DEV_BLOCK = 1;
export const BPF_DEVCG_DEV_CHAR = 2;

export const BPF_INSN_SIZE = 8;

/** struct bpf_insn: { u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm; } */
export interface BpfInsn {
  readonly code: number;
  readonly dst: number;
  readonly src: number;
  readonly off: number;
  readonly imm: number;
}

const R0 = 0;
const R1 = 1;
const R2 = 2;
const R3 = 3;
const R4 = 4;
const R5 = 5;

const ACCESS_BITS: readonly (readonly [string, number])[] = [['m', BPF_DEVCG_ACC_MKNOD], ['r', BPF_DEVCG_ACC_READ], ['w', BPF_DEVCG_ACC_WRITE]];

type Item = { t: 'insn'; insn: BpfInsn } | { t: 'jump'; code: number; dst: number; imm: number; label: number } | { t: 'bind'; label: number };

/** A few instructions and forward jumps to labels; offsets are filled in at the end (16 bits, ample here). */
class Emitter {
  readonly #items: Item[] = [];
  #labels = 0;

  label(): number { return this.#labels++; }
  bind(label: number): void { this.#items.push({ t: 'bind', label }); }
  insn(code: number, dst: number, src: number, off: number, imm: number): void {
    this.#items.push({ t: 'insn', insn: { code, dst, src, off, imm } });
  }
  jump(code: number, dst: number, imm: number, label: number): void {
    this.#items.push({ t: 'jump', code, dst, imm, label });
  }
  exit(r0: 0 | 1): void {
    this.insn(BPF_ALU32_MOV_K, R0, 0, 0, r0);
    this.insn(BPF_EXIT, 0, 0, 0, 0);
  }

  finish(): BpfInsn[] {
    const at = new Map<number, number>();
    let pc = 0;
    for (const it of this.#items) {
      if (it.t === 'bind') at.set(it.label, pc);
      else pc++;
    }
    const out: BpfInsn[] = [];
    for (const it of this.#items) {
      if (it.t === 'insn') out.push(it.insn);
      else if (it.t === 'jump') {
        const target = at.get(it.label);
        if (target === undefined) throw new Error(`device program: label ${it.label} is never bound`);
        const off = target - (out.length + 1);
        if (off < 0 || off > 0x7fff) throw new Error(`device program: jump offset ${off} out of range`);
        out.push({ code: it.code, dst: it.dst, src: 0, off, imm: it.imm });
      }
    }
    return out;
  }
}

/** A rule's device type as the program compares it; undefined for "a" (every type). */
function devType(rule: DeviceCgroup): number | undefined {
  const t = rule.type ?? 'a';
  return t === 'c' ? BPF_DEVCG_DEV_CHAR : t === 'b' ? BPF_DEVCG_DEV_BLOCK : undefined;
}

/** The access kinds a rule names: every kind for type "a", as the v1 kernel reads "a". */
function ruleAccess(rule: DeviceCgroup): number {
  if (devType(rule) === undefined) return BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
  let bits = 0;
  for (const [c, bit] of ACCESS_BITS) if ((rule.access ?? 'rwm').includes(c)) bits |= bit;
  return bits;
}

/** The program's instructions for the rules (already completed by effectiveResources). */
export function deviceProgram(rules: readonly DeviceCgroup[]): BpfInsn[] {
  const e = new Emitter();
  e.insn(BPF_LDX_MEM_W, R2, R1, 0, 0);
  e.insn(BPF_ALU32_AND_K, R2, 0, 0, 0xffff); // r2: the device type
  e.insn(BPF_LDX_MEM_W, R3, R1, 0, 0);
  e.insn(BPF_ALU32_RSH_K, R3, 0, 0, 16); // r3: the access asked for
  e.insn(BPF_LDX_MEM_W, R4, R1, 4, 0); // r4: major
  e.insn(BPF_LDX_MEM_W, R5, R1, 8, 0); // r5: minor
  for (const [, bit] of ACCESS_BITS) {
    const asked = e.label();
    const decided = e.label();
    e.jump(BPF_JMP32_JSET_K, R3, bit, asked);
    e.jump(BPF_JMP_JA, 0, 0, decided);
    e.bind(asked);
    // Last rule first: the first that matches is the one written last, which wins on v1.
    for (const rule of [...rules].reverse()) {
      if ((ruleAccess(rule) & bit) === 0) continue;
      const next = e.label();
      const type = devType(rule);
      if (type !== undefined) {
        e.jump(BPF_JMP32_JNE_K, R2, type, next);
        if (rule.major !== undefined && rule.major >= 0) e.jump(BPF_JMP32_JNE_K, R4, rule.major | 0, next);
        if (rule.minor !== undefined && rule.minor >= 0) e.jump(BPF_JMP32_JNE_K, R5, rule.minor | 0, next);
      }
      if (rule.allow) e.jump(BPF_JMP_JA, 0, 0, decided);
      else e.exit(0);
      e.bind(next);
    }
    // No rule names this device for this access: allowed, as on v1 below an allow-all root.
    e.bind(decided);
  }
  e.exit(1);
  return e.finish();
}

/** The program as bpf(BPF_PROG_LOAD) reads it: 8 little-endian bytes per instruction. */
export function encodeBpf(insns: readonly BpfInsn[]): Buffer {
  const buf = Buffer.alloc(insns.length * BPF_INSN_SIZE);
  insns.forEach((insn, i) => {
    const o = i * BPF_INSN_SIZE;
    buf.writeUInt8(insn.code, o);
    buf.writeUInt8(((insn.src & 0xf) << 4) | (insn.dst & 0xf), o + 1);
    buf.writeInt16LE(insn.off, o + 2);
    buf.writeInt32LE(insn.imm | 0, o + 4);
  });
  return buf;
}
