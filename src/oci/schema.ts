// The project's own JSON Schema of runtime-spec 1.x config.json and state, from which the types in
// spec.ts are derived (TypeBox: each builder call is both a schema and a static type).
//
// Written from runtime-spec v1.3.0's schema, with what stockade needs on Linux added: process.user
// and its uid and gid are REQUIRED (config.md makes them so on POSIX platforms, which the upstream
// schema leaves to prose), and the sections of platforms stockade never reads (solaris, windows,
// zos, freebsd) are only checked for being objects, so the validator every `create` loads stays
// small. Properties are listed in the upstream schema's order: Ajv checks them in this order and
// stops at the first error, so the order decides which field a one-line error names.
//
// Used at build time only (src/tools/gen-validator.ts compiles it to standalone Ajv code); the
// runtime imports the types, never this module, so TypeBox stays out of the bundle.
// test/unit/oci/schema.test.ts cross-checks it against the upstream schema where that is present.

import { Type, type Static, type TObject, type TSchema, type TUnsafe } from '@sinclair/typebox';
import {
  CONTAINER_STATUSES, DEVICE_TYPES, IO_PRIORITY_CLASSES, MEMORY_POLICY_FLAGS, MEMORY_POLICY_MODES,
  NAMESPACE_TYPES, PERSONALITY_DOMAINS, ROOTFS_PROPAGATIONS, SCHEDULER_FLAGS, SCHEDULER_POLICIES, SECCOMP_ACTIONS,
  SECCOMP_ARCHS, SECCOMP_FLAGS, SECCOMP_OPERATORS, VM_IMAGE_FORMATS,
} from './enums';

// ---- building blocks (defs.json) -------------------------------------------------------------

const definitions: TSchema[] = [];

/**
 * `schema` registered under `id` and used by reference: the compiled validator then holds one
 * function for it instead of a copy at every use (upstream's definitions, kept as such): 140 KB of
 * code for every `create` to load instead of 260 KB with everything inlined.
 */
function shared<T extends TSchema>(id: string, schema: T): TUnsafe<Static<T>> {
  definitions.push({ ...schema, $id: id });
  return Type.Unsafe<Static<T>>({ $ref: id });
}

/** The schemas the documents refer to by `$ref`, to hand to Ajv beside them. */
export const DEFINITIONS: readonly TSchema[] = definitions;

/** A closed string set as JSON Schema's `enum`, so an error lists the allowed values. */
function oneOfStrings<const T extends readonly string[]>(values: T): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values] });
}

/** An object whose every property holds `value` (upstream's `additionalProperties` maps). */
function mapOf<S extends TSchema>(value: S): TUnsafe<Record<string, Static<S>>> {
  return Type.Unsafe<Record<string, Static<S>>>({ type: 'object', additionalProperties: value });
}

// JSON numbers arrive as doubles; these bounds are the doubles the upstream schema's literals
// parse to (2^63 - 1 and 2^64 - 1 round up to 2^63 and 2^64).
const int32 = shared('int32', Type.Integer({ minimum: -2147483648, maximum: 2147483647 }));
const int64 = shared('int64', Type.Integer({ minimum: -(2 ** 63), maximum: 2 ** 63 }));
const uint16 = shared('uint16', Type.Integer({ minimum: 0, maximum: 65535 }));
const uint32 = shared('uint32', Type.Integer({ minimum: 0, maximum: 4294967295 }));
const uint64 = shared('uint64', Type.Integer({ minimum: 0, maximum: 2 ** 64 }));
const strings = shared('ArrayOfStrings', Type.Array(Type.String()));
const opt = Type.Optional;

/**
 * `schema` with its required properties checked in `order` (upstream's), where that differs from
 * the order the properties are listed in: the first missing one is the one an error names.
 */
function requiredInOrder<T extends TObject>(schema: T, order: readonly (keyof T['properties'] & string)[]): T {
  const have = [...(schema.required ?? [])].sort();
  if (JSON.stringify(have) !== JSON.stringify([...order].sort())) throw new Error(`requiredInOrder: ${order.join(',')} is not ${have.join(',')}`);
  schema.required = [...order];
  return schema;
}

/** upstream `mapStringString`: every property whose name has at least one character is a string. */
const StringMap = shared('mapStringString', Type.Unsafe<Record<string, string>>({ type: 'object', patternProperties: { '.{1,}': { type: 'string' } } }));

export const IdMappingSchema = shared('IDMapping', Type.Object({
  containerID: uint32,
  hostID: uint32,
  size: uint32,
}));

export const HookSchema = shared('Hook', Type.Object({
  path: Type.String(),
  args: opt(strings),
  env: opt(strings),
  /** Seconds. */
  timeout: opt(Type.Integer({ minimum: 1 })),
}));

export const MountSchema = shared('Mount', Type.Object({
  source: opt(Type.String()),
  destination: Type.String(),
  options: opt(strings),
  type: opt(Type.String()),
  uidMappings: opt(Type.Array(IdMappingSchema)),
  gidMappings: opt(Type.Array(IdMappingSchema)),
}));

// ---- process ---------------------------------------------------------------------------------

export const UserSchema = Type.Object({
  uid: uint32,
  gid: uint32,
  umask: opt(uint32),
  additionalGids: opt(Type.Array(uint32)),
  username: opt(Type.String()),
});

export const CapabilitiesSchema = Type.Object({
  bounding: opt(strings),
  permitted: opt(strings),
  effective: opt(strings),
  inheritable: opt(strings),
  ambient: opt(strings),
});

export const RlimitSchema = requiredInOrder(Type.Object({
  hard: uint64,
  soft: uint64,
  /** `RLIMIT_*`; the schema checks the shape, semantic-checks.ts the name. */
  type: Type.String({ pattern: '^RLIMIT_[A-Z]+$' }),
}), ['type', 'soft', 'hard']);

export const IoPrioritySchema = Type.Object({
  class: oneOfStrings(IO_PRIORITY_CLASSES),
  priority: opt(int32),
});

export const SchedulerSchema = Type.Object({
  policy: oneOfStrings(SCHEDULER_POLICIES),
  nice: opt(int32),
  priority: opt(int32),
  flags: opt(Type.Array(oneOfStrings(SCHEDULER_FLAGS))),
  runtime: opt(uint64),
  deadline: opt(uint64),
  period: opt(uint64),
});

export const ExecCpuAffinitySchema = Type.Object({
  initial: opt(Type.String({ pattern: '^[0-9, -]*$' })),
  final: opt(Type.String({ pattern: '^[0-9, -]*$' })),
});

export const ConsoleSizeSchema = Type.Object({ height: uint64, width: uint64 });

export const ProcessSchema = Type.Object({
  /** Present and non-empty in every config parseConfig returns with a process (semantic-checks.ts). */
  args: opt(strings),
  /** Windows only; accepted and ignored. */
  commandLine: opt(Type.String()),
  consoleSize: opt(ConsoleSizeSchema),
  cwd: Type.String(),
  env: opt(strings),
  terminal: opt(Type.Boolean()),
  /** REQUIRED on Linux by config.md, with its uid and gid. */
  user: UserSchema,
  capabilities: opt(CapabilitiesSchema),
  apparmorProfile: opt(Type.String()),
  oomScoreAdj: opt(Type.Integer()),
  selinuxLabel: opt(Type.String()),
  ioPriority: opt(IoPrioritySchema),
  noNewPrivileges: opt(Type.Boolean()),
  scheduler: opt(SchedulerSchema),
  rlimits: opt(Type.Array(RlimitSchema)),
  execCPUAffinity: opt(ExecCpuAffinitySchema),
});

export const RootSchema = Type.Object({
  path: Type.String(),
  readonly: opt(Type.Boolean()),
});

// ---- linux (config-linux.json, defs-linux.json) ------------------------------------------------

export const DeviceSchema = shared('Device', Type.Object({
  type: Type.Unsafe<(typeof DEVICE_TYPES)[number]>({ type: 'string', pattern: '^[cbup]$' }),
  path: Type.String(),
  fileMode: opt(Type.Integer({ minimum: 0, maximum: 511 })),
  major: opt(int64),
  minor: opt(int64),
  uid: opt(uint32),
  gid: opt(uint32),
}));

export const NetDeviceSchema = shared('NetDevice', Type.Object({ name: opt(Type.String()) }));

export const NamespaceSchema = shared('NamespaceReference', Type.Object({
  type: oneOfStrings(NAMESPACE_TYPES),
  path: opt(Type.String()),
}));

export const DeviceCgroupSchema = shared('DeviceCgroup', Type.Object({
  allow: Type.Boolean(),
  type: opt(Type.String()),
  major: opt(int64),
  minor: opt(int64),
  access: opt(Type.String()),
}));

export const PidsResourcesSchema = Type.Object({ limit: int64 });

export const BlockIoWeightDeviceSchema = shared('blockIODeviceWeight', Type.Object({
  major: int64,
  minor: int64,
  weight: opt(uint16),
  leafWeight: opt(uint16),
}));

export const BlockIoThrottleDeviceSchema = shared('blockIODeviceThrottle', Type.Object({
  major: int64,
  minor: int64,
  rate: opt(uint64),
}));

export const BlockIoResourcesSchema = Type.Object({
  weight: opt(uint16),
  leafWeight: opt(uint16),
  throttleReadBpsDevice: opt(Type.Array(BlockIoThrottleDeviceSchema)),
  throttleWriteBpsDevice: opt(Type.Array(BlockIoThrottleDeviceSchema)),
  throttleReadIOPSDevice: opt(Type.Array(BlockIoThrottleDeviceSchema)),
  throttleWriteIOPSDevice: opt(Type.Array(BlockIoThrottleDeviceSchema)),
  weightDevice: opt(Type.Array(BlockIoWeightDeviceSchema)),
});

export const CpuResourcesSchema = Type.Object({
  cpus: opt(Type.String()),
  mems: opt(Type.String()),
  period: opt(uint64),
  quota: opt(int64),
  burst: opt(uint64),
  realtimePeriod: opt(uint64),
  realtimeRuntime: opt(int64),
  shares: opt(uint64),
  idle: opt(int64),
});

export const HugepageLimitSchema = Type.Object({
  /** `<size><K|M|G>B`, e.g. "2MB". */
  pageSize: Type.String({ pattern: '^[1-9][0-9]*[KMG]B$' }),
  limit: uint64,
});

export const MemoryResourcesSchema = Type.Object({
  kernel: opt(int64),
  kernelTCP: opt(int64),
  limit: opt(int64),
  reservation: opt(int64),
  swap: opt(int64),
  swappiness: opt(uint64),
  disableOOMKiller: opt(Type.Boolean()),
  useHierarchy: opt(Type.Boolean()),
  checkBeforeUpdate: opt(Type.Boolean()),
});

export const NetworkInterfacePrioritySchema = shared('NetworkInterfacePriority', Type.Object({ name: Type.String(), priority: uint32 }));

export const NetworkResourcesSchema = Type.Object({
  classID: opt(uint32),
  priorities: opt(Type.Array(NetworkInterfacePrioritySchema)),
});

export const RdmaLimitSchema = shared('Rdma', Type.Object({ hcaHandles: opt(uint32), hcaObjects: opt(uint32) }));

export const ResourcesSchema = Type.Object({
  /** cgroup v2 file name -> content. */
  unified: opt(StringMap),
  devices: opt(Type.Array(DeviceCgroupSchema)),
  pids: opt(PidsResourcesSchema),
  blockIO: opt(BlockIoResourcesSchema),
  cpu: opt(CpuResourcesSchema),
  hugepageLimits: opt(Type.Array(HugepageLimitSchema)),
  memory: opt(MemoryResourcesSchema),
  network: opt(NetworkResourcesSchema),
  rdma: opt(mapOf(RdmaLimitSchema)),
});

export const SeccompArgSchema = shared('SyscallArg', Type.Object({
  index: uint32,
  value: uint64,
  valueTwo: opt(uint64),
  op: oneOfStrings(SECCOMP_OPERATORS),
}));

export const SeccompSyscallSchema = shared('Syscall', Type.Object({
  names: Type.Array(Type.String(), { minItems: 1 }),
  action: oneOfStrings(SECCOMP_ACTIONS),
  errnoRet: opt(uint32),
  args: opt(Type.Array(SeccompArgSchema)),
}));

/** Syscall names, errno values and flag support are judged by the compiler in src/seccomp. */
export const LinuxSeccompSchema = Type.Object({
  defaultAction: oneOfStrings(SECCOMP_ACTIONS),
  defaultErrnoRet: opt(uint32),
  flags: opt(Type.Array(oneOfStrings(SECCOMP_FLAGS))),
  listenerPath: opt(Type.String()),
  listenerMetadata: opt(Type.String()),
  architectures: opt(Type.Array(oneOfStrings(SECCOMP_ARCHS))),
  syscalls: opt(Type.Array(SeccompSyscallSchema)),
});

export const IntelRdtSchema = Type.Object({
  closID: opt(Type.String()),
  schemata: opt(strings),
  l3CacheSchema: opt(Type.String()),
  memBwSchema: opt(Type.String({ pattern: '^MB:[^\\n]*$' })),
  enableMonitoring: opt(Type.Boolean()),
});

export const MemoryPolicySchema = Type.Object({
  mode: opt(oneOfStrings(MEMORY_POLICY_MODES)),
  nodes: opt(Type.String()),
  flags: opt(Type.Array(oneOfStrings(MEMORY_POLICY_FLAGS))),
});

export const PersonalitySchema = Type.Object({
  domain: opt(oneOfStrings(PERSONALITY_DOMAINS)),
  flags: opt(strings),
});

export const TimeOffsetSchema = shared('TimeOffsets', Type.Object({ secs: opt(int64), nanosecs: opt(uint32) }));

export const TimeOffsetsSchema = Type.Object({
  boottime: opt(TimeOffsetSchema),
  monotonic: opt(TimeOffsetSchema),
});

export const LinuxSchema = Type.Object({
  devices: opt(Type.Array(DeviceSchema)),
  netDevices: opt(mapOf(NetDeviceSchema)),
  uidMappings: opt(Type.Array(IdMappingSchema)),
  gidMappings: opt(Type.Array(IdMappingSchema)),
  namespaces: opt(Type.Array(NamespaceSchema)),
  resources: opt(ResourcesSchema),
  cgroupsPath: opt(Type.String()),
  rootfsPropagation: opt(oneOfStrings(ROOTFS_PROPAGATIONS)),
  seccomp: opt(LinuxSeccompSchema),
  sysctl: opt(StringMap),
  maskedPaths: opt(strings),
  readonlyPaths: opt(strings),
  mountLabel: opt(Type.String()),
  intelRdt: opt(IntelRdtSchema),
  memoryPolicy: opt(MemoryPolicySchema),
  personality: opt(PersonalitySchema),
  timeOffsets: opt(TimeOffsetsSchema),
});

// ---- vm (config-vm.json; read by the microVM level) ---------------------------------------------

export const VmHypervisorSchema = Type.Object({ path: Type.String(), parameters: opt(strings) });

export const VmKernelSchema = Type.Object({
  path: Type.String(),
  parameters: opt(strings),
  initrd: opt(Type.String()),
});

export const VmImageSchema = Type.Object({
  path: Type.String(),
  format: oneOfStrings(VM_IMAGE_FORMATS),
});

const IoMemEntrySchema = Type.Object({
  firstGFN: opt(uint64),
  firstMFN: uint64,
  nrMFNs: uint64,
});

/** Xen's hardware description; checked as upstream checks it, unused by stockade. */
export const VmHwConfigSchema = Type.Object({
  deviceTree: opt(Type.String()),
  vcpus: opt(uint32),
  memory: opt(uint64),
  dtdevs: opt(strings),
  // Upstream writes `items` as a one-element list: in JSON Schema that checks the first entry only.
  iomems: opt(Type.Unsafe<unknown[]>({ type: 'array', items: [IoMemEntrySchema] })),
  irqs: opt(Type.Array(uint32)),
});

export const VmSchema = Type.Object({
  hypervisor: opt(VmHypervisorSchema),
  kernel: VmKernelSchema,
  image: opt(VmImageSchema),
  hwConfig: opt(VmHwConfigSchema),
});

// ---- the documents ---------------------------------------------------------------------------

/** Other platforms' sections: checked only for being objects, never read. */
const ForeignPlatform = Type.Unsafe<Record<string, unknown>>({ type: 'object' });

const hooks = shared('ArrayOfHooks', Type.Array(HookSchema));

/** Keyed by HOOK_NAMES (test/unit/oci/schema.test.ts keeps the two equal). */
export const HooksSchema = Type.Object({
  prestart: opt(hooks),
  createRuntime: opt(hooks),
  createContainer: opt(hooks),
  startContainer: opt(hooks),
  poststart: opt(hooks),
  poststop: opt(hooks),
});

export const ConfigSchema = Type.Object({
  ociVersion: Type.String(),
  hooks: opt(HooksSchema),
  annotations: opt(StringMap),
  hostname: opt(Type.String()),
  domainname: opt(Type.String()),
  mounts: opt(Type.Array(MountSchema)),
  root: opt(RootSchema),
  process: opt(ProcessSchema),
  linux: opt(LinuxSchema),
  solaris: opt(ForeignPlatform),
  windows: opt(ForeignPlatform),
  vm: opt(VmSchema),
  zos: opt(ForeignPlatform),
  freebsd: opt(ForeignPlatform),
});

export const StateSchema = Type.Object({
  ociVersion: Type.String(),
  id: Type.String(),
  status: oneOfStrings(CONTAINER_STATUSES),
  pid: opt(Type.Integer({ minimum: 0 })),
  bundle: Type.String(),
  annotations: opt(StringMap),
});
