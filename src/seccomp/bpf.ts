// Classic BPF: struct sock_filter encoding, an assembler with labels that handles the 8-bit jump limit, and a disassembler.
import {
  BPF_A, BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_B, BPF_DIV, BPF_H, BPF_IMM, BPF_IND, BPF_JA, BPF_JEQ,
  BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH, BPF_MEM, BPF_MISC, BPF_MOD,
  BPF_MSH, BPF_MUL, BPF_NEG, BPF_OR, BPF_RET, BPF_RSH, BPF_ST, BPF_STX, BPF_SUB, BPF_TXA, BPF_W, BPF_X, BPF_XOR,
} from './constants';

/** struct sock_filter: { __u16 code; __u8 jt; __u8 jf; __u32 k; } */
export interface SockFilter {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

export const SOCK_FILTER_SIZE = 8;

/** The program as the kernel reads it: 8 bytes per instruction, little-endian like every ABI in arch.ts. */
export function encodeProgram(insns: readonly SockFilter[]): Buffer {
  const buf = Buffer.alloc(insns.length * SOCK_FILTER_SIZE);
  insns.forEach((insn, i) => {
    const o = i * SOCK_FILTER_SIZE;
    buf.writeUInt16LE(insn.code, o);
    buf.writeUInt8(insn.jt, o + 2);
    buf.writeUInt8(insn.jf, o + 3);
    buf.writeUInt32LE(insn.k >>> 0, o + 4);
  });
  return buf;
}

export function decodeProgram(buf: Uint8Array): SockFilter[] {
  if (buf.length % SOCK_FILTER_SIZE !== 0) {
    throw new RangeError(`a BPF program is a whole number of 8-byte instructions, not ${buf.length} bytes`);
  }
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: SockFilter[] = [];
  for (let o = 0; o < view.length; o += SOCK_FILTER_SIZE) {
    out.push({ code: view.readUInt16LE(o), jt: view.readUInt8(o + 2), jf: view.readUInt8(o + 3), k: view.readUInt32LE(o + 4) });
  }
  return out;
}

declare const labelBrand: unique symbol;
/** A position in the program, bound later; jumps name labels and the assembler computes offsets. */
export type Label = number & { readonly [labelBrand]: true };
/** "The instruction after this jump": a jump side that just falls through. */
export const NEXT = -1 as Label;

export type JumpOp = typeof BPF_JEQ | typeof BPF_JGT | typeof BPF_JGE | typeof BPF_JSET;

type Item =
  | { readonly t: 'stmt'; readonly code: number; readonly k: number }
  | { readonly t: 'jcond'; readonly op: JumpOp; readonly k: number; readonly jt: Label; readonly jf: Label }
  | { readonly t: 'ja'; readonly target: Label }
  | { readonly t: 'bind'; readonly label: Label };

const MAX_JUMP = 255;

/**
 * Builds a program from statements and jumps to labels. Conditional jumps carry 8-bit offsets,
 * so a jump whose target is more than 255 instructions ahead is rewritten to land on a trampoline
 * placed right after it: a `ja` (32-bit offset), or a copy of the target when the target is a
 * `ret`, which costs the same space and saves the hop.
 */
export class Assembler {
  #items: Item[] = [];
  #labels = 0;

  label(): Label {
    return this.#labels++ as Label;
  }

  bind(label: Label): void {
    this.#items.push({ t: 'bind', label });
  }

  ldAbs(offset: number): void {
    this.#items.push({ t: 'stmt', code: BPF_LD | BPF_W | BPF_ABS, k: offset });
  }

  andK(mask: number): void {
    this.#items.push({ t: 'stmt', code: BPF_ALU | BPF_AND | BPF_K, k: mask >>> 0 });
  }

  ret(value: number): void {
    this.#items.push({ t: 'stmt', code: BPF_RET | BPF_K, k: value >>> 0 });
  }

  /** if (A <op> k) goto jt; else goto jf */
  jump(op: JumpOp, k: number, jt: Label, jf: Label): void {
    this.#items.push({ t: 'jcond', op, k: k >>> 0, jt, jf });
  }

  ja(target: Label): void {
    this.#items.push({ t: 'ja', target });
  }

  assemble(): SockFilter[] {
    const items = this.#items;
    // Per conditional jump (by item index): whether its true/false side goes through a
    // trampoline. Sides are only ever switched on, so the layout loop reaches a fixed point.
    const farT = new Set<number>();
    const farF = new Set<number>();
    const size = (i: number): number => {
      const it = items[i] as Item;
      if (it.t === 'bind') return 0;
      if (it.t !== 'jcond') return 1;
      return 1 + (farT.has(i) ? 1 : 0) + (farF.has(i) ? 1 : 0);
    };

    let pos: number[] = [];
    let labelPos = new Map<Label, number>();
    const layout = (): void => {
      pos = [];
      labelPos = new Map();
      let p = 0;
      items.forEach((it, i) => {
        pos.push(p);
        if (it.t === 'bind') labelPos.set(it.label, p);
        p += size(i);
      });
    };
    const target = (i: number, label: Label): number => {
      if (label === NEXT) return (pos[i] as number) + size(i);
      const p = labelPos.get(label);
      if (p === undefined) throw new Error(`BPF assembler: label ${label} is never bound`);
      return p;
    };

    for (let changed = true; changed;) {
      changed = false;
      layout();
      items.forEach((it, i) => {
        if (it.t !== 'jcond') return;
        // Both offsets count from the jump itself, trampolines included, so this is the exact test.
        const from = (pos[i] as number) + 1;
        if (!farT.has(i) && target(i, it.jt) - from > MAX_JUMP) {
          farT.add(i);
          changed = true;
        }
        if (!farF.has(i) && target(i, it.jf) - from > MAX_JUMP) {
          farF.add(i);
          changed = true;
        }
      });
    }

    const retAt = new Map<number, number>(); // position -> k of the `ret K` there
    items.forEach((it, i) => {
      if (it.t === 'stmt' && it.code === (BPF_RET | BPF_K)) retAt.set(pos[i] as number, it.k);
    });
    const trampoline = (slot: number, to: number): SockFilter => {
      if (to <= slot) throw new Error('BPF assembler: jumps only go forward');
      const k = retAt.get(to);
      return k !== undefined
        ? { code: BPF_RET | BPF_K, jt: 0, jf: 0, k }
        : { code: BPF_JMP | BPF_JA, jt: 0, jf: 0, k: to - slot - 1 };
    };
    const rel = (from: number, to: number): number => {
      const d = to - from - 1;
      if (d < 0 || d > MAX_JUMP) throw new Error(`BPF assembler: jump offset ${d} out of range`);
      return d;
    };

    const out: SockFilter[] = [];
    items.forEach((it, i) => {
      const p = pos[i] as number;
      switch (it.t) {
        case 'bind':
          return;
        case 'stmt':
          out.push({ code: it.code, jt: 0, jf: 0, k: it.k });
          return;
        case 'ja':
          out.push(trampoline(p, target(i, it.target)));
          return;
        case 'jcond': {
          const tT = target(i, it.jt);
          const tF = target(i, it.jf);
          // Trampolines follow the jump: the true side's first, then the false side's.
          const slotT = p + 1;
          const slotF = p + 1 + (farT.has(i) ? 1 : 0);
          out.push({
            code: BPF_JMP | it.op | BPF_K,
            jt: rel(p, farT.has(i) ? slotT : tT),
            jf: rel(p, farF.has(i) ? slotF : tF),
            k: it.k,
          });
          if (farT.has(i)) out.push(trampoline(slotT, tT));
          if (farF.has(i)) out.push(trampoline(slotF, tF));
          return;
        }
      }
    });
    return out;
  }
}

const ALU_NAMES: Readonly<Record<number, string>> = {
  [BPF_ADD]: 'add', [BPF_SUB]: 'sub', [BPF_MUL]: 'mul', [BPF_DIV]: 'div', [BPF_OR]: 'or', [BPF_AND]: 'and',
  [BPF_LSH]: 'lsh', [BPF_RSH]: 'rsh', [BPF_NEG]: 'neg', [BPF_MOD]: 'mod', [BPF_XOR]: 'xor',
};
const JMP_NAMES: Readonly<Record<number, string>> = {
  [BPF_JA]: 'ja', [BPF_JEQ]: 'jeq', [BPF_JGT]: 'jgt', [BPF_JGE]: 'jge', [BPF_JSET]: 'jset',
};

function hex(k: number): string {
  return `0x${(k >>> 0).toString(16)}`;
}

/** One line per instruction with absolute jump targets, for debug logs and test failures. */
export function disassemble(insns: readonly SockFilter[]): string[] {
  const w = String(Math.max(insns.length - 1, 0)).length;
  const at = (n: number): string => String(n).padStart(w, '0');
  return insns.map((ins, pc) => {
    const cls = ins.code & 0x07;
    const src = ins.code & 0x08;
    const size = ins.code & 0x18;
    const mode = ins.code & 0xe0;
    const sz = size === BPF_W ? '' : size === BPF_H ? 'h' : size === BPF_B ? 'b' : '?';
    let text: string;
    switch (cls) {
      case BPF_LD:
      case BPF_LDX: {
        const reg = cls === BPF_LD ? 'ld' : 'ldx';
        text = mode === BPF_ABS ? `${reg}${sz} [${ins.k}]`
          : mode === BPF_IND ? `${reg}${sz} [x+${ins.k}]`
            : mode === BPF_MEM ? `${reg} M[${ins.k}]`
              : mode === BPF_IMM ? `${reg} #${hex(ins.k)}`
                : mode === BPF_LEN ? `${reg} #len`
                  : mode === BPF_MSH ? `ldxb 4*([${ins.k}]&0xf)` : `??? ${hex(ins.code)}`;
        break;
      }
      case BPF_ST: text = `st M[${ins.k}]`; break;
      case BPF_STX: text = `stx M[${ins.k}]`; break;
      case BPF_ALU: {
        const op = ALU_NAMES[ins.code & 0xf0] ?? `alu?${hex(ins.code)}`;
        text = (ins.code & 0xf0) === BPF_NEG ? 'neg' : `${op} ${src === BPF_X ? 'x' : `#${hex(ins.k)}`}`;
        break;
      }
      case BPF_JMP: {
        const op = JMP_NAMES[ins.code & 0xf0] ?? `jmp?${hex(ins.code)}`;
        text = (ins.code & 0xf0) === BPF_JA
          ? `ja ${at(pc + 1 + ins.k)}`
          : `${op} ${src === BPF_X ? 'x' : `#${hex(ins.k)}`} jt ${at(pc + 1 + ins.jt)} jf ${at(pc + 1 + ins.jf)}`;
        break;
      }
      case BPF_RET: text = (ins.code & 0x18) === BPF_A ? 'ret a' : `ret #${hex(ins.k)}`; break;
      case BPF_MISC: text = (ins.code & 0xf8) === BPF_TXA ? 'txa' : 'tax'; break;
      default: text = `??? ${hex(ins.code)}`;
    }
    return `${at(pc)}: ${text}`;
  });
}

