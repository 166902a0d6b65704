// The config behind `stockade do`: the host's root read-only (or overlaid in memory), fresh /proc, /dev, /tmp.
import type { Spec } from '../oci/spec';
import { defaultSeccompProfile } from '../seccomp';

export interface DoOptions {
  args: string[];
  env: string[];
  cwd: string;
  network: 'none' | 'host';
  rw: boolean;
  uid: number;
  gid: number;
}

const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

// Fresh in-memory mounts over the host's; a working directory below one is bound back, read-only.
const FRESH = ['/tmp', '/var/tmp', '/run'];

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

export function doSpec(opts: DoOptions): Spec {
  const namespaces: { type: 'pid' | 'mount' | 'ipc' | 'uts' | 'network' | 'cgroup' }[] = [
    { type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }, { type: 'cgroup' },
  ];
  if (opts.network === 'none') namespaces.push({ type: 'network' });
  const caps = opts.uid === 0 ? DEFAULT_CAPS : [];
  const cwdMount = FRESH.some((d) => under(opts.cwd, d))
    ? [{ destination: opts.cwd, type: 'bind', source: opts.cwd, options: ['rbind', 'ro', 'nosuid', 'nodev'] }]
    : [];
  return {
    ociVersion: '1.3.0',
    process: {
      terminal: false,
      user: { uid: opts.uid, gid: opts.gid },
      args: opts.args,
      env: opts.env,
      cwd: opts.cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: true,
    },
    root: { path: '/', readonly: !opts.rw },
    hostname: 'stockade',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
      { destination: '/var/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
      { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755'] },
      ...cwdMount,
    ],
    linux: {
      namespaces,
      // Docker's default profile, cut to these capabilities: no mount, unshare, keyctl, bpf, ...
      seccomp: defaultSeccompProfile({ capabilities: caps }),
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}
