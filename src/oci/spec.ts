// Types of the OCI runtime-spec 1.x config.json and state, derived from the project's schema
// (schema.ts), so a value typed `Spec` is exactly what passed schema validation, no more.
//
// Integers the schema calls uint64/int64 arrive as JS numbers: values beyond 2^53 (RLIM_INFINITY,
// for one) lose precision in JSON.parse, and consumers that care compare against thresholds
// rather than exact values. Only types are imported from schema.ts: the builder library is a
// build-time tool and stays out of the runtime.

import type { Static } from '@sinclair/typebox';
import type {
  BlockIoResourcesSchema, BlockIoThrottleDeviceSchema, BlockIoWeightDeviceSchema, CapabilitiesSchema,
  ConfigSchema, ConsoleSizeSchema, CpuResourcesSchema, DeviceCgroupSchema, DeviceSchema, ExecCpuAffinitySchema,
  HookSchema, HooksSchema, HugepageLimitSchema, IdMappingSchema, IntelRdtSchema, IoPrioritySchema, LinuxSchema,
  LinuxSeccompSchema, MemoryPolicySchema, MemoryResourcesSchema, MountSchema, NamespaceSchema, NetDeviceSchema,
  NetworkInterfacePrioritySchema, NetworkResourcesSchema, PersonalitySchema, PidsResourcesSchema, ProcessSchema,
  RdmaLimitSchema, ResourcesSchema, RlimitSchema, RootSchema, SchedulerSchema, SeccompArgSchema,
  SeccompSyscallSchema, StateSchema, TimeOffsetSchema, TimeOffsetsSchema, UserSchema, VmHypervisorSchema,
  VmImageSchema, VmKernelSchema, VmSchema,
} from './schema';

export * from './enums';

export type Annotations = Record<string, string>;

// ---- process -------------------------------------------------------------------------------

export type User = Static<typeof UserSchema>;
export type ConsoleSize = Static<typeof ConsoleSizeSchema>;
export type Capabilities = Static<typeof CapabilitiesSchema>;
export type Rlimit = Static<typeof RlimitSchema>;
export type IoPriority = Static<typeof IoPrioritySchema>;
export type Scheduler = Static<typeof SchedulerSchema>;
export type ExecCpuAffinity = Static<typeof ExecCpuAffinitySchema>;
export type Process = Static<typeof ProcessSchema>;

// ---- root, mounts, hooks -------------------------------------------------------------------

export type Root = Static<typeof RootSchema>;
export type IdMapping = Static<typeof IdMappingSchema>;
export type Mount = Static<typeof MountSchema>;
export type Hook = Static<typeof HookSchema>;
export type Hooks = Static<typeof HooksSchema>;

// ---- linux ---------------------------------------------------------------------------------

export type Namespace = Static<typeof NamespaceSchema>;
export type TimeOffset = Static<typeof TimeOffsetSchema>;
export type TimeOffsets = Static<typeof TimeOffsetsSchema>;
export type Device = Static<typeof DeviceSchema>;
export type NetDevice = Static<typeof NetDeviceSchema>;
export type DeviceCgroup = Static<typeof DeviceCgroupSchema>;
export type MemoryResources = Static<typeof MemoryResourcesSchema>;
export type CpuResources = Static<typeof CpuResourcesSchema>;
export type PidsResources = Static<typeof PidsResourcesSchema>;
export type BlockIoWeightDevice = Static<typeof BlockIoWeightDeviceSchema>;
export type BlockIoThrottleDevice = Static<typeof BlockIoThrottleDeviceSchema>;
export type BlockIoResources = Static<typeof BlockIoResourcesSchema>;
export type HugepageLimit = Static<typeof HugepageLimitSchema>;
export type NetworkInterfacePriority = Static<typeof NetworkInterfacePrioritySchema>;
export type NetworkResources = Static<typeof NetworkResourcesSchema>;
export type RdmaLimit = Static<typeof RdmaLimitSchema>;
export type Resources = Static<typeof ResourcesSchema>;
export type IntelRdt = Static<typeof IntelRdtSchema>;
export type MemoryPolicy = Static<typeof MemoryPolicySchema>;
export type Personality = Static<typeof PersonalitySchema>;
export type SeccompArg = Static<typeof SeccompArgSchema>;
export type SeccompSyscall = Static<typeof SeccompSyscallSchema>;
export type LinuxSeccomp = Static<typeof LinuxSeccompSchema>;
export type Linux = Static<typeof LinuxSchema>;

// ---- vm (read by the microVM level) ----------------------------------------------------------

export type VmHypervisor = Static<typeof VmHypervisorSchema>;
export type VmKernel = Static<typeof VmKernelSchema>;
export type VmImage = Static<typeof VmImageSchema>;
export type Vm = Static<typeof VmSchema>;

// ---- the documents -------------------------------------------------------------------------

export type Spec = Static<typeof ConfigSchema>;

/** The state document of the runtime-spec (`stockade state` prints it). */
export type State = Static<typeof StateSchema>;
