// The config.json `stockade spec` writes: runc's example spec, field for field, under stockade's name.
//
// Kept equal to `runc spec` (and `runc spec --rootless`) so that bundles and tutorials written
// for runc work unchanged. Deliberate differences: ociVersion is the version our schema
// validates, the hostname is "stockade", and the cgroup namespace is always listed (runc adds it
// only on a cgroup v2 host; stockade treats v1-only hosts as legacy).

import type { Linux, LinuxSeccomp, Mount, Namespace, Spec } from './spec';

/** The runtime-spec version stockade writes and validates against (schema v1.3.0). */
export const OCI_VERSION = '1.3.0';

export interface DefaultSpecOptions {
  /** As `runc spec --rootless`: a user namespace mapping the caller to root, no network namespace. */
  rootless?: boolean;
  /** Host ids mapped to root in the rootless spec; default: the caller's effective uid and gid. */
  hostUid?: number;
  hostGid?: number;
  /**
   * A seccomp profile to place in linux.seccomp. `stockade spec` writes none, as runc does; this
   * is where a default profile from src/seccomp plugs in once there is one.
   */
  seccomp?: LinuxSeccomp;
}

const DEFAULT_CAPABILITIES = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

// Kernel files that leak host information or offer host-wide controls; the same lists as runc's.
const MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi', '/sys/devices/virtual/tpm',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

function defaultMounts(): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ];
}

/**
 * Rootless: an unprivileged user cannot mount sysfs (it belongs to the host's network namespace,
 * which is kept), so /sys is bound from the host; uid=/gid= options would name ids the single
 * mapping does not have; and cgroup limits are left out because the caller cannot set them.
 */
function rootlessMounts(mounts: readonly Mount[]): Mount[] {
  return mounts.map((m) => {
    if (m.destination === '/sys') {
      return { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
    }
    if (m.options === undefined) return m;
    return { ...m, options: m.options.filter((o) => !o.startsWith('uid=') && !o.startsWith('gid=')) };
  });
}

export function defaultSpec(options: DefaultSpecOptions = {}): Spec {
  const rootless = options.rootless === true;
  const namespaces: Namespace[] = rootless
    ? [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }, { type: 'user' }]
    : [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }];
  const mounts = defaultMounts();

  // Key order follows runc's output, so a diff against `runc spec` shows only real differences.
  const linux: Linux = {};
  if (rootless) {
    linux.uidMappings = [{ containerID: 0, hostID: options.hostUid ?? process.geteuid?.() ?? 0, size: 1 }];
    linux.gidMappings = [{ containerID: 0, hostID: options.hostGid ?? process.getegid?.() ?? 0, size: 1 }];
  } else {
    // Deny every device node; the runtime adds the spec's default devices back.
    linux.resources = { devices: [{ allow: false, access: 'rwm' }] };
  }
  linux.namespaces = namespaces;
  if (options.seccomp !== undefined) linux.seccomp = options.seccomp;
  linux.maskedPaths = [...MASKED_PATHS];
  linux.readonlyPaths = [...READONLY_PATHS];

  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: [...DEFAULT_CAPABILITIES],
        effective: [...DEFAULT_CAPABILITIES],
        permitted: [...DEFAULT_CAPABILITIES],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'stockade',
    mounts: rootless ? rootlessMounts(mounts) : mounts,
    linux,
  };
  return spec;
}
