// seccomp(2) and classic BPF constants in kernel spelling (linux/seccomp.h, linux/filter.h, linux/bpf_common.h).

// Filter return values: the action sits in the top 16 bits (SECCOMP_RET_ACTION_FULL), its data in
// the low 16 (SECCOMP_RET_DATA). When several filters are stacked the kernel takes the action
// with the lowest value, so these are ordered from most to least severe as signed numbers.
export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_KILL_THREAD = 0x00000000;
export const SECCOMP_RET_TRAP = 0x00030000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_USER_NOTIF = 0x7fc00000;
export const SECCOMP_RET_TRACE = 0x7ff00000;
export const SECCOMP_RET_LOG = 0x7ffc0000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const SECCOMP_RET_ACTION_FULL = 0xffff0000;
export const SECCOMP_RET_DATA = 0x0000ffff;

// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog) flags.
export const SECCOMP_SET_MODE_FILTER = 1;
export const SECCOMP_FILTER_FLAG_TSYNC = 1 << 0;
export const SECCOMP_FILTER_FLAG_LOG = 1 << 1;
export const SECCOMP_FILTER_FLAG_SPEC_ALLOW = 1 << 2;
export const SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3;
export const SECCOMP_FILTER_FLAG_TSYNC_ESRCH = 1 << 4;
export const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5;

/** struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; } */
export const SECCOMP_DATA_NR = 0;
export const SECCOMP_DATA_ARCH = 4;
export const SECCOMP_DATA_IP = 8;
export const SECCOMP_DATA_ARGS = 16;
export const SECCOMP_DATA_SIZE = 64;

/** The kernel refuses longer programs (include/uapi/linux/filter.h). */
export const BPF_MAXINSNS = 4096;
/** Scratch memory words M[0..15]. */
export const BPF_MEMWORDS = 16;

// Instruction classes and fields (linux/bpf_common.h).
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_RET = 0x06;
export const BPF_MISC = 0x07;

export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;

export const BPF_IMM = 0x00;
export const BPF_ABS = 0x20;
export const BPF_IND = 0x40;
export const BPF_MEM = 0x60;
export const BPF_LEN = 0x80;
export const BPF_MSH = 0xa0;

export const BPF_ADD = 0x00;
export const BPF_SUB = 0x10;
export const BPF_MUL = 0x20;
export const BPF_DIV = 0x30;
export const BPF_OR = 0x40;
export const BPF_AND = 0x50;
export const BPF_LSH = 0x60;
export const BPF_RSH = 0x70;
export const BPF_NEG = 0x80;
export const BPF_MOD = 0x90;
export const BPF_XOR = 0xa0;

export const BPF_JA = 0x00;
export const BPF_JEQ = 0x10;
export const BPF_JGT = 0x20;
export const BPF_JGE = 0x30;
export const BPF_JSET = 0x40;

export const BPF_K = 0x00;
export const BPF_X = 0x08;
export const BPF_A = 0x10;

export const BPF_TAX = 0x00;
export const BPF_TXA = 0x80;

export { ENOSYS, EPERM } from '../abi/linux/constants';
/** The kernel clamps SECCOMP_RET_ERRNO data to this (include/linux/err.h). */
export const MAX_ERRNO = 4095;
