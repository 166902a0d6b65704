// The seccomp compiler's public surface: parse a profile, compile it (cached or not), the default profile, and the test tools.
export type {
  ArgCondition, ArgIndex, CmpOp, OciSeccomp, OciSyscall, OciSyscallArg, SeccompAction, SeccompActionKind,
  SeccompArch, SeccompFlag, SeccompProfile, SpecAction, SpecOperator, SyscallRule,
} from './types';
export { CMP_OPS, SPEC_ACTIONS, SPEC_ARCHES, SPEC_FLAGS } from './types';
export { parseSeccomp } from './parse';
export type { CompiledFilter, CompileOptions } from './compile';
export { compile, COMPILER_VERSION } from './compile';
export type { CachedFilter } from './cache';
export { cacheKey, compileCached } from './cache';
export { defaultSeccompProfile, DOCKER_DEFAULT_CAPABILITIES } from './default-profile';
export type { DefaultProfileOptions } from './default-profile';
export { actionOf, actionValue, formatAction } from './actions';
export { abiOf, nativeArch, supportedArches, syscallNumber } from './arch';
export type { Abi } from './arch';
export { decodeProgram, disassemble, encodeProgram } from './bpf';
export type { SockFilter } from './bpf';
export { checkProgram, runFilter } from './interpreter';
export type { SeccompData } from './interpreter';
