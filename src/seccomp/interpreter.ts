// A classic BPF interpreter over struct seccomp_data, with the kernel's load-time checks, so tests can run compiled filters without a kernel.
import type { SockFilter } from './bpf';
import { decodeProgram } from './bpf';
import {
  BPF_A, BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_DIV, BPF_IMM, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP,
  BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH, BPF_MAXINSNS, BPF_MEM, BPF_MEMWORDS, BPF_MISC, BPF_MUL,
  BPF_NEG, BPF_OR, BPF_RET, BPF_RSH, BPF_ST, BPF_STX, BPF_SUB, BPF_TAX, BPF_TXA, BPF_W, BPF_X, BPF_XOR,
  SECCOMP_DATA_SIZE,
} from './constants';

/** struct seccomp_data, with the 64-bit fields as bigints. */
export interface SeccompData {
  readonly nr: number;
  readonly arch: number;
  readonly instructionPointer?: bigint;
  /** up to six arguments; missing ones are 0 */
  readonly args?: readonly bigint[];
}

export class BpfError extends Error {
  readonly pc: number;
  constructor(pc: number, message: string) {
    super(`BPF instruction ${pc}: ${message}`);
    this.name = 'BpfError';
    this.pc = pc;
  }
}

// The opcodes seccomp accepts (kernel/seccomp.c seccomp_check_filter): no packet access beyond
// 32-bit absolute loads of seccomp_data, no MOD, no indirect loads.
const ALLOWED = new Set<number>([
  BPF_LD | BPF_W | BPF_ABS, BPF_LD | BPF_W | BPF_LEN, BPF_LDX | BPF_W | BPF_LEN,
  BPF_RET | BPF_K, BPF_RET | BPF_A,
  ...[BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_AND, BPF_OR, BPF_XOR, BPF_LSH, BPF_RSH]
    .flatMap((op) => [BPF_ALU | op | BPF_K, BPF_ALU | op | BPF_X]),
  BPF_ALU | BPF_NEG,
  BPF_LD | BPF_IMM, BPF_LDX | BPF_IMM, BPF_MISC | BPF_TAX, BPF_MISC | BPF_TXA,
  BPF_LD | BPF_MEM, BPF_LDX | BPF_MEM, BPF_ST, BPF_STX,
  BPF_JMP | BPF_JA,
  ...[BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JSET].flatMap((op) => [BPF_JMP | op | BPF_K, BPF_JMP | op | BPF_X]),
]);

function toInsns(program: Uint8Array | readonly SockFilter[]): readonly SockFilter[] {
  return program instanceof Uint8Array ? decodeProgram(program) : program;
}

/**
 * The checks the kernel makes before it accepts a filter (bpf_check_classic and
 * seccomp_check_filter), minus the flow analysis of scratch-memory reads, which the interpreter
 * catches at run time instead. Throws BpfError naming the first bad instruction.
 */
export function checkProgram(program: Uint8Array | readonly SockFilter[]): void {
  const insns = toInsns(program);
  if (insns.length === 0 || insns.length > BPF_MAXINSNS) {
    throw new BpfError(0, `program length ${insns.length} is outside 1..${BPF_MAXINSNS}`);
  }
  insns.forEach((ins, pc) => {
    if (!ALLOWED.has(ins.code)) throw new BpfError(pc, `opcode 0x${ins.code.toString(16)} is not allowed in seccomp filters`);
    const cls = ins.code & 0x07;
    const op = ins.code & 0xf0;
    if (ins.code === (BPF_LD | BPF_W | BPF_ABS) && (ins.k >= SECCOMP_DATA_SIZE || (ins.k & 3) !== 0)) {
      throw new BpfError(pc, `load offset ${ins.k} is not an aligned offset into seccomp_data`);
    }
    if (cls === BPF_ALU && (ins.code & 0x08) === BPF_K) {
      if (op === BPF_DIV && ins.k === 0) throw new BpfError(pc, 'division by constant zero');
      if ((op === BPF_LSH || op === BPF_RSH) && ins.k >= 32) throw new BpfError(pc, `shift by ${ins.k}`);
    }
    if ((ins.code & 0xe0) === BPF_MEM && (cls === BPF_LD || cls === BPF_LDX) && ins.k >= BPF_MEMWORDS) {
      throw new BpfError(pc, `scratch memory index ${ins.k}`);
    }
    if ((cls === BPF_ST || cls === BPF_STX) && ins.k >= BPF_MEMWORDS) throw new BpfError(pc, `scratch memory index ${ins.k}`);
    if (cls === BPF_JMP) {
      if (op === BPF_JA) {
        if (ins.k >= insns.length - pc - 1) throw new BpfError(pc, `ja ${ins.k} jumps past the end`);
      } else if (pc + ins.jt + 1 >= insns.length || pc + ins.jf + 1 >= insns.length) {
        throw new BpfError(pc, 'conditional jump past the end');
      }
    }
  });
  const last = insns[insns.length - 1] as SockFilter;
  if ((last.code & 0x07) !== BPF_RET) throw new BpfError(insns.length - 1, 'the last instruction must be a ret');
}

/** The seccomp_data bytes in little-endian order, as the kernel lays them out on x86 and arm. */
export function seccompDataBytes(data: SeccompData): Buffer {
  const buf = Buffer.alloc(SECCOMP_DATA_SIZE);
  buf.writeUInt32LE(data.nr >>> 0, 0);
  buf.writeUInt32LE(data.arch >>> 0, 4);
  buf.writeBigUInt64LE(BigInt.asUintN(64, data.instructionPointer ?? 0n), 8);
  const args = data.args ?? [];
  if (args.length > 6) throw new RangeError('seccomp_data has six arguments');
  args.forEach((a, i) => buf.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  return buf;
}

/** Runs a filter over one syscall and returns the 32-bit value the filter returns. */
export function runFilter(program: Uint8Array | readonly SockFilter[], data: SeccompData): number {
  const insns = toInsns(program);
  checkProgram(insns);
  return run(columns(insns), data);
}

/**
 * A filter decoded and checked once, to run over many syscalls (as the sentry's judge of refusals
 * does). It is kept as columns of typed arrays, 8 bytes an instruction, where an object each took
 * some 40: the sentry's filter has thousands.
 */
export function checkedFilter(program: Uint8Array | readonly SockFilter[]): (data: SeccompData) => number {
  const insns = toInsns(program);
  checkProgram(insns);
  const p = columns(insns);
  return (data) => run(p, data);
}

/** A program as one typed array per field of struct sock_filter. */
interface Columns {
  readonly code: Uint16Array;
  readonly jt: Uint8Array;
  readonly jf: Uint8Array;
  readonly k: Uint32Array;
}

function columns(insns: readonly SockFilter[]): Columns {
  const n = insns.length;
  const p = { code: new Uint16Array(n), jt: new Uint8Array(n), jf: new Uint8Array(n), k: new Uint32Array(n) };
  insns.forEach((ins, i) => {
    p.code[i] = ins.code;
    p.jt[i] = ins.jt;
    p.jf[i] = ins.jf;
    p.k[i] = ins.k;
  });
  return p;
}

function run(p: Columns, data: SeccompData): number {
  const mem = seccompDataBytes(data);
  const scratch = new Array<number | undefined>(BPF_MEMWORDS).fill(undefined);
  let a = 0;
  let x = 0;
  const n = p.code.length;
  for (let pc = 0; pc < n; pc++) {
    const code = p.code[pc] as number;
    const k = p.k[pc] as number;
    const cls = code & 0x07;
    const op = code & 0xf0;
    const operand = (code & 0x08) === BPF_X ? x : k;
    switch (cls) {
      case BPF_LD:
        switch (code & 0xe0) {
          case BPF_ABS: a = mem.readUInt32LE(k); break;
          case BPF_LEN: a = SECCOMP_DATA_SIZE; break;
          case BPF_IMM: a = k; break;
          case BPF_MEM: a = readScratch(scratch, k, pc); break;
          default: throw new BpfError(pc, 'unsupported load');
        }
        break;
      case BPF_LDX:
        switch (code & 0xe0) {
          case BPF_LEN: x = SECCOMP_DATA_SIZE; break;
          case BPF_IMM: x = k; break;
          case BPF_MEM: x = readScratch(scratch, k, pc); break;
          default: throw new BpfError(pc, 'unsupported load');
        }
        break;
      case BPF_ST: scratch[k] = a; break;
      case BPF_STX: scratch[k] = x; break;
      case BPF_ALU:
        a = alu(op, a, operand, pc);
        if (Number.isNaN(a)) return 0; // classic BPF: dividing by X == 0 ends the filter with 0
        break;
      case BPF_JMP: {
        if (op === BPF_JA) {
          pc += k;
          break;
        }
        let taken: boolean;
        switch (op) {
          case BPF_JEQ: taken = a === operand; break;
          case BPF_JGT: taken = a > operand; break;
          case BPF_JGE: taken = a >= operand; break;
          case BPF_JSET: taken = (a & operand) !== 0; break;
          default: throw new BpfError(pc, 'unsupported jump');
        }
        pc += taken ? (p.jt[pc] as number) : (p.jf[pc] as number);
        break;
      }
      case BPF_RET:
        return ((code & 0x18) === BPF_A ? a : k) >>> 0;
      case BPF_MISC:
        if ((code & 0xf8) === BPF_TAX) x = a;
        else if ((code & 0xf8) === BPF_TXA) a = x;
        break;
      default:
        throw new BpfError(pc, 'unsupported instruction class');
    }
  }
  throw new BpfError(n, 'ran off the end of the program');
}

function readScratch(scratch: readonly (number | undefined)[], k: number, pc: number): number {
  const v = scratch[k];
  if (v === undefined) throw new BpfError(pc, `M[${k}] read before it was written`);
  return v;
}

/** 32-bit unsigned ALU; NaN for division by zero. */
function alu(op: number, a: number, b: number, pc: number): number {
  switch (op) {
    case BPF_ADD: return (a + b) >>> 0;
    case BPF_SUB: return (a - b) >>> 0;
    case BPF_MUL: return Math.imul(a, b) >>> 0;
    case BPF_DIV: return b === 0 ? NaN : Math.floor(a / b) >>> 0;
    case BPF_AND: return (a & b) >>> 0;
    case BPF_OR: return (a | b) >>> 0;
    case BPF_XOR: return (a ^ b) >>> 0;
    case BPF_LSH: return b >= 32 ? 0 : (a << b) >>> 0;
    case BPF_RSH: return b >= 32 ? 0 : a >>> b;
    case BPF_NEG: return (-a) >>> 0;
    default: throw new BpfError(pc, `unsupported ALU op 0x${op.toString(16)}`);
  }
}
