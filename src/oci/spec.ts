// Types of the OCI runtime-spec v1.3.0 config.json and state, written from the JSON Schema.
//
// Optional properties are optional exactly where the generated validator lets them be absent (the
// upstream schema plus the Linux-required fields src/tools/gen-validator.ts adds), so a value
// typed `Spec` is what passed schema validation, no more. Integers the schema calls uint64/int64 arrive
// as JS numbers: values beyond 2^53 (RLIM_INFINITY, for one) lose precision in JSON.parse, and
// consumers that care compare against thresholds rather than exact values.
//
// The closed string sets are exported as arrays too, so features and checks use the same data;
// test/unit/oci/spec-tables.test.ts keeps them equal to the schema's enums.

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

export type Annotations = Record<string, string>;

// ---- process -------------------------------------------------------------------------------

/** uid and gid are REQUIRED by config.md on Linux; the generator adds that to the schema. */
export interface User {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
  username?: string;
}

export interface ConsoleSize {
  height: number;
  width: number;
}

export interface Capabilities {
  bounding?: string[];
  permitted?: string[];
  effective?: string[];
  inheritable?: string[];
  ambient?: string[];
}
export const CAPABILITY_SETS = ['bounding', 'permitted', 'effective', 'inheritable', 'ambient'] as const;

export interface Rlimit {
  /** `RLIMIT_*`; the schema only checks the shape, validate.ts checks the name. */
  type: string;
  soft: number;
  hard: number;
}

export interface IoPriority {
  class: IoPriorityClass;
  priority?: number;
}

export interface Scheduler {
  policy: SchedulerPolicy;
  nice?: number;
  priority?: number;
  flags?: SchedulerFlag[];
  runtime?: number;
  deadline?: number;
  period?: number;
}

export interface ExecCpuAffinity {
  initial?: string;
  final?: string;
}

export interface Process {
  terminal?: boolean;
  consoleSize?: ConsoleSize;
  cwd: string;
  env?: string[];
  /** Present and non-empty in every config parseConfig returns with a process. */
  args?: string[];
  /** Windows only; accepted and ignored. */
  commandLine?: string;
  /** REQUIRED on Linux by config.md; the generator adds that to the schema. */
  user: User;
  capabilities?: Capabilities;
  rlimits?: Rlimit[];
  noNewPrivileges?: boolean;
  oomScoreAdj?: number;
  apparmorProfile?: string;
  selinuxLabel?: string;
  ioPriority?: IoPriority;
  scheduler?: Scheduler;
  execCPUAffinity?: ExecCpuAffinity;
}

// ---- root, mounts, hooks -------------------------------------------------------------------

export interface Root {
  path: string;
  readonly?: boolean;
}

export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface Mount {
  destination: string;
  source?: string;
  type?: string;
  options?: string[];
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
}

export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  /** Seconds. */
  timeout?: number;
}

export type Hooks = { [K in HookName]?: Hook[] };

// ---- linux ---------------------------------------------------------------------------------

export interface Namespace {
  type: NamespaceType;
  path?: string;
}

export interface TimeOffset {
  secs?: number;
  nanosecs?: number;
}

export interface TimeOffsets {
  boottime?: TimeOffset;
  monotonic?: TimeOffset;
}

export interface Device {
  type: DeviceType;
  path: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface NetDevice {
  name?: string;
}

export interface DeviceCgroup {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access?: string;
}

export interface MemoryResources {
  limit?: number;
  reservation?: number;
  swap?: number;
  kernel?: number;
  kernelTCP?: number;
  swappiness?: number;
  disableOOMKiller?: boolean;
  useHierarchy?: boolean;
  checkBeforeUpdate?: boolean;
}

export interface CpuResources {
  shares?: number;
  quota?: number;
  burst?: number;
  period?: number;
  realtimeRuntime?: number;
  realtimePeriod?: number;
  cpus?: string;
  mems?: string;
  idle?: number;
}

export interface PidsResources {
  limit: number;
}

export interface BlockIoDevice {
  major: number;
  minor: number;
}

export interface BlockIoWeightDevice extends BlockIoDevice {
  weight?: number;
  leafWeight?: number;
}

export interface BlockIoThrottleDevice extends BlockIoDevice {
  rate?: number;
}

export interface BlockIoResources {
  weight?: number;
  leafWeight?: number;
  weightDevice?: BlockIoWeightDevice[];
  throttleReadBpsDevice?: BlockIoThrottleDevice[];
  throttleWriteBpsDevice?: BlockIoThrottleDevice[];
  throttleReadIOPSDevice?: BlockIoThrottleDevice[];
  throttleWriteIOPSDevice?: BlockIoThrottleDevice[];
}

export interface HugepageLimit {
  /** `<size><K|M|G>B`, e.g. "2MB". */
  pageSize: string;
  limit: number;
}

export interface NetworkInterfacePriority {
  name: string;
  priority: number;
}

export interface NetworkResources {
  classID?: number;
  priorities?: NetworkInterfacePriority[];
}

export interface RdmaLimit {
  hcaHandles?: number;
  hcaObjects?: number;
}

export interface Resources {
  devices?: DeviceCgroup[];
  memory?: MemoryResources;
  cpu?: CpuResources;
  pids?: PidsResources;
  blockIO?: BlockIoResources;
  hugepageLimits?: HugepageLimit[];
  network?: NetworkResources;
  rdma?: Record<string, RdmaLimit>;
  /** cgroup v2 file name -> content. */
  unified?: Record<string, string>;
}

export interface IntelRdt {
  closID?: string;
  schemata?: string[];
  l3CacheSchema?: string;
  memBwSchema?: string;
  enableMonitoring?: boolean;
}

export interface MemoryPolicy {
  mode?: MemoryPolicyMode;
  nodes?: string;
  flags?: MemoryPolicyFlag[];
}

export interface Personality {
  domain?: PersonalityDomain;
  flags?: string[];
}

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: SeccompOperator;
}

export interface SeccompSyscall {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: SeccompArg[];
}

/**
 * The seccomp section as the schema shapes it. Syscall names, errno values and flag support are
 * judged by the compiler in src/seccomp, not here.
 */
export interface LinuxSeccomp {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  flags?: SeccompFlag[];
  listenerPath?: string;
  listenerMetadata?: string;
  architectures?: SeccompArch[];
  syscalls?: SeccompSyscall[];
}

export interface Linux {
  namespaces?: Namespace[];
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  timeOffsets?: TimeOffsets;
  devices?: Device[];
  netDevices?: Record<string, NetDevice>;
  cgroupsPath?: string;
  resources?: Resources;
  intelRdt?: IntelRdt;
  memoryPolicy?: MemoryPolicy;
  sysctl?: Record<string, string>;
  seccomp?: LinuxSeccomp;
  rootfsPropagation?: RootfsPropagation;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  mountLabel?: string;
  personality?: Personality;
}

// ---- vm (read by the microVM level) ----------------------------------------------------------

export interface VmHypervisor {
  path: string;
  parameters?: string[];
}

export interface VmKernel {
  path: string;
  parameters?: string[];
  initrd?: string;
}

export interface VmImage {
  path: string;
  format: 'raw' | 'qcow2' | 'vdi' | 'vmdk' | 'vhd';
}

export interface Vm {
  hypervisor?: VmHypervisor;
  kernel: VmKernel;
  image?: VmImage;
  /** Xen-specific hardware description; kept as the schema checked it, unused by stockade. */
  hwConfig?: Record<string, unknown>;
}

// ---- the document --------------------------------------------------------------------------

export interface Spec {
  ociVersion: string;
  process?: Process;
  root?: Root;
  hostname?: string;
  domainname?: string;
  mounts?: Mount[];
  hooks?: Hooks;
  annotations?: Annotations;
  linux?: Linux;
  vm?: Vm;
  /** Other platforms' sections: checked only for being objects, never read. */
  solaris?: Record<string, unknown>;
  windows?: Record<string, unknown>;
  zos?: Record<string, unknown>;
  freebsd?: Record<string, unknown>;
}

/** The state document of the runtime-spec (`stockade state` prints it). */
export interface State {
  ociVersion: string;
  id: string;
  status: ContainerStatus;
  pid?: number;
  bundle: string;
  annotations?: Annotations;
}
