// The closed string sets of runtime-spec 1.x (upstream's enums), as data: the schema (schema.ts)
// is built from them, and features and checks read the same lists.

export const NAMESPACE_TYPES = ['mount', 'pid', 'network', 'uts', 'ipc', 'user', 'cgroup', 'time'] as const;
export type NamespaceType = (typeof NAMESPACE_TYPES)[number];

export const ROOTFS_PROPAGATIONS = ['private', 'shared', 'slave', 'unbindable'] as const;
export type RootfsPropagation = (typeof ROOTFS_PROPAGATIONS)[number];

export const HOOK_NAMES = [
  'prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop',
] as const;
export type HookName = (typeof HOOK_NAMES)[number];

export const SECCOMP_ACTIONS = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
] as const;
export type SeccompAction = (typeof SECCOMP_ACTIONS)[number];

export const SECCOMP_OPERATORS = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
] as const;
export type SeccompOperator = (typeof SECCOMP_OPERATORS)[number];

export const SECCOMP_ARCHS = [
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_LOONGARCH64', 'SCMP_ARCH_M68K', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64',
  'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X',
  'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB', 'SCMP_ARCH_PARISC', 'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64',
] as const;
export type SeccompArch = (typeof SECCOMP_ARCHS)[number];

export const SECCOMP_FLAGS = [
  'SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW',
  'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV',
] as const;
export type SeccompFlag = (typeof SECCOMP_FLAGS)[number];

export const SCHEDULER_POLICIES = [
  'SCHED_OTHER', 'SCHED_FIFO', 'SCHED_RR', 'SCHED_BATCH', 'SCHED_ISO', 'SCHED_IDLE', 'SCHED_DEADLINE',
] as const;
export type SchedulerPolicy = (typeof SCHEDULER_POLICIES)[number];

export const SCHEDULER_FLAGS = [
  'SCHED_FLAG_RESET_ON_FORK', 'SCHED_FLAG_RECLAIM', 'SCHED_FLAG_DL_OVERRUN', 'SCHED_FLAG_KEEP_POLICY',
  'SCHED_FLAG_KEEP_PARAMS', 'SCHED_FLAG_UTIL_CLAMP_MIN', 'SCHED_FLAG_UTIL_CLAMP_MAX',
] as const;
export type SchedulerFlag = (typeof SCHEDULER_FLAGS)[number];

export const IO_PRIORITY_CLASSES = ['IOPRIO_CLASS_RT', 'IOPRIO_CLASS_BE', 'IOPRIO_CLASS_IDLE'] as const;
export type IoPriorityClass = (typeof IO_PRIORITY_CLASSES)[number];

export const MEMORY_POLICY_MODES = [
  'MPOL_DEFAULT', 'MPOL_BIND', 'MPOL_INTERLEAVE', 'MPOL_WEIGHTED_INTERLEAVE', 'MPOL_PREFERRED',
  'MPOL_PREFERRED_MANY', 'MPOL_LOCAL',
] as const;
export type MemoryPolicyMode = (typeof MEMORY_POLICY_MODES)[number];

export const MEMORY_POLICY_FLAGS = ['MPOL_F_NUMA_BALANCING', 'MPOL_F_RELATIVE_NODES', 'MPOL_F_STATIC_NODES'] as const;
export type MemoryPolicyFlag = (typeof MEMORY_POLICY_FLAGS)[number];

export const PERSONALITY_DOMAINS = ['LINUX', 'LINUX32'] as const;
export type PersonalityDomain = (typeof PERSONALITY_DOMAINS)[number];

export const DEVICE_TYPES = ['c', 'b', 'u', 'p'] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

export const CONTAINER_STATUSES = ['creating', 'created', 'running', 'stopped'] as const;
export type ContainerStatus = (typeof CONTAINER_STATUSES)[number];

export const CAPABILITY_SETS = ['bounding', 'permitted', 'effective', 'inheritable', 'ambient'] as const;

export const VM_IMAGE_FORMATS = ['raw', 'qcow2', 'vdi', 'vmdk', 'vhd'] as const;
export type VmImageFormat = (typeof VM_IMAGE_FORMATS)[number];
