// The seccomp rule model (rules as data), and the OCI `linux.seccomp` shape it is parsed from.

/** Architecture names as the runtime-spec spells them (defs-linux.json SeccompArch). */
export const SPEC_ARCHES = [
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_LOONGARCH64', 'SCMP_ARCH_M68K', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32',
  'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64',
  'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB',
  'SCMP_ARCH_PARISC', 'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64',
] as const;
export type SeccompArch = (typeof SPEC_ARCHES)[number];

/** Filter flags a profile may ask for (defs-linux.json SeccompFlag). */
export const SPEC_FLAGS = [
  'SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW',
  'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV',
] as const;
export type SeccompFlag = (typeof SPEC_FLAGS)[number];

/**
 * What the filter answers for a syscall. SCMP_ACT_KILL parses to KILL_THREAD, which is what the
 * kernel's SECCOMP_RET_KILL has meant since SECCOMP_RET_KILL_PROCESS was added.
 */
export type SeccompAction =
  | { readonly kind: 'ALLOW' }
  | { readonly kind: 'ERRNO'; readonly errno: number }
  | { readonly kind: 'KILL_THREAD' }
  | { readonly kind: 'KILL_PROCESS' }
  | { readonly kind: 'TRAP' }
  /** `data` reaches the tracer through PTRACE_GETEVENTMSG; the spec calls it errnoRet. */
  | { readonly kind: 'TRACE'; readonly data: number }
  | { readonly kind: 'LOG' }
  | { readonly kind: 'NOTIFY' };
export type SeccompActionKind = SeccompAction['kind'];

/** Comparison operators, without the SCMP_CMP_ prefix. All compare unsigned 64-bit values. */
export const CMP_OPS = ['NE', 'LT', 'LE', 'EQ', 'GE', 'GT', 'MASKED_EQ'] as const;
export type CmpOp = (typeof CMP_OPS)[number];

export type ArgIndex = 0 | 1 | 2 | 3 | 4 | 5;

/**
 * `args[index] <op> value`; for MASKED_EQ, `(args[index] & value) == valueTwo` (libseccomp's
 * datum_a is the mask and datum_b the expected value, and the spec keeps that order).
 */
export interface ArgCondition {
  readonly index: ArgIndex;
  readonly op: CmpOp;
  readonly value: bigint;
  readonly valueTwo: bigint;
}

/**
 * One rule: for any of `names`, when every condition in `args` holds (AND), answer `action`.
 * Rules are tried in order and the first that matches decides (see compile.ts for why).
 */
export interface SyscallRule {
  readonly names: readonly string[];
  readonly action: SeccompAction;
  readonly args: readonly ArgCondition[];
}

export interface SeccompProfile {
  readonly defaultAction: SeccompAction;
  /** Extra ABIs to filter; the native one is always filtered, as libseccomp does. */
  readonly architectures: readonly SeccompArch[];
  readonly flags: readonly SeccompFlag[];
  readonly syscalls: readonly SyscallRule[];
  readonly listenerPath?: string;
  readonly listenerMetadata?: string;
}

/** Action and operator names as the runtime-spec spells them (defs-linux.json). */
export const SPEC_ACTIONS = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
] as const;
export type SpecAction = (typeof SPEC_ACTIONS)[number];
export type SpecOperator = `SCMP_CMP_${CmpOp}`;

/**
 * `linux.seccomp` as config.json carries it (config-linux.json), for profiles this module writes.
 * parseSeccomp reads `unknown` instead: a caller whose JSON parser keeps 64-bit integers exact
 * may hand it bigints for `value` and `valueTwo`.
 */
export interface OciSeccomp {
  defaultAction: SpecAction;
  defaultErrnoRet?: number;
  architectures?: SeccompArch[];
  flags?: SeccompFlag[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: OciSyscall[];
}

export interface OciSyscall {
  names: string[];
  action: SpecAction;
  errnoRet?: number;
  args?: OciSyscallArg[];
}

export interface OciSyscallArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: SpecOperator;
}
