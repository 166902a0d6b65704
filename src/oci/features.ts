// The runtime-spec features document `stockade features` prints: what this build of stockade implements.
//
// Lists come from the same tables the runtime uses (namespaces, capabilities, mount options), so
// the document cannot claim what the code does not do. The seccomp lists describe stockade's own
// BPF compiler; its owner passes the real ones in through FeaturesOptions.seccomp.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../loader/package-root';
import { CAPABILITIES } from '../abi/linux/constants';
import { OCI_VERSION } from './default-spec';
import { SUPPORTED_MOUNT_OPTIONS } from './mount-options';
import {
  HOOK_NAMES, NAMESPACE_TYPES, SECCOMP_ACTIONS, SECCOMP_FLAGS, SECCOMP_OPERATORS,
  type Annotations, type NamespaceType, type SeccompAction, type SeccompArch, type SeccompFlag,
  type SeccompOperator,
} from './spec';

export interface SeccompFeatures {
  enabled: boolean;
  actions: SeccompAction[];
  operators: SeccompOperator[];
  archs: SeccompArch[];
  knownFlags: SeccompFlag[];
  supportedFlags: SeccompFlag[];
}

export interface LinuxFeatures {
  namespaces: NamespaceType[];
  capabilities: string[];
  cgroup: { v1: boolean; v2: boolean; systemd: boolean; systemdUser: boolean; rdma: boolean };
  seccomp: SeccompFeatures;
  apparmor: { enabled: boolean };
  selinux: { enabled: boolean };
  intelRdt: { enabled: boolean };
  mountExtensions: { idmap: { enabled: boolean } };
  netDevices: { enabled: boolean };
}

export interface Features {
  ociVersionMin: string;
  ociVersionMax: string;
  hooks: string[];
  mountOptions: string[];
  linux: LinuxFeatures;
  annotations: Annotations;
  potentiallyUnsafeConfigAnnotations: string[];
}

export interface FeaturesOptions {
  /** Reported as the dev.stockade.version annotation; default: package.json's version. */
  version?: string;
  seccomp?: Partial<SeccompFeatures>;
  /**
   * The isolation levels this build can run (the registry's, src/levels/), reported as the
   * dev.stockade.isolation.levels annotation, comma-separated: the values dev.stockade.isolation takes.
   */
  levels?: readonly string[];
}

/** The version in stockade's package.json. */
export function packageVersion(): string {
  try {
    const pkg: unknown = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8'));
    if (typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string') return pkg.version;
  } catch {
    // reported as unknown below
  }
  return 'unknown';
}

/**
 * Annotations that change how stockade runs a container. `dev.stockade.isolation` can choose a
 * weaker wall than the default, so callers (containerd, CRI-O) should pass it through only from
 * trusted sources. A trailing dot means a prefix, as in the runtime-spec's own example.
 */
const UNSAFE_ANNOTATIONS = ['dev.stockade.'];

export function featuresDocument(options: FeaturesOptions = {}): Features {
  const seccomp: SeccompFeatures = {
    enabled: true,
    actions: [...SECCOMP_ACTIONS],
    operators: [...SECCOMP_OPERATORS],
    // The architectures stockade runs on; a filter also names their compat ABIs to kill them.
    archs: ['SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64'],
    knownFlags: [...SECCOMP_FLAGS],
    supportedFlags: ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'],
    ...options.seccomp,
  };
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: OCI_VERSION,
    hooks: [...HOOK_NAMES],
    mountOptions: [...SUPPORTED_MOUNT_OPTIONS],
    linux: {
      namespaces: [...NAMESPACE_TYPES],
      capabilities: [...CAPABILITIES],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: false },
      seccomp,
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: false } },
      netDevices: { enabled: false },
    },
    annotations: {
      'dev.stockade.version': options.version ?? packageVersion(),
      ...(options.levels === undefined ? {} : { 'dev.stockade.isolation.levels': options.levels.join(',') }),
    },
    potentiallyUnsafeConfigAnnotations: [...UNSAFE_ANNOTATIONS],
  };
}
