// The rules of config.json that its JSON Schema cannot express, one function per group.
//
// Each check takes a schema-valid Spec and returns every problem it finds, each naming its field;
// validate.ts reports the first. The rules come from the runtime-spec text (config.md,
// config-linux.md) and from what runc refuses (libcontainer/configs/validate, specconv); where
// stockade is stricter than runc, the check's comment says why.

import { CAPABILITIES, RLIMITS } from '../abi/linux/constants';
import { isStockadeError } from '../errors/index';
import { formatPath, quote, type PathSegment } from './field-path';
import { parseMountOptions } from './mount-options';
import {
  CAPABILITY_SETS, HOOK_NAMES, ROOTFS_PROPAGATIONS, type NamespaceType, type Spec,
} from './spec';

export interface ConfigProblem {
  /** JSON path of the field, e.g. `linux.namespaces[2].type`. */
  field: string;
  /** Lower-case, no trailing period; follows the field in a one-line message. */
  message: string;
  /** UNSUPPORTED when the config is valid but asks for something stockade does not implement. */
  code?: 'UNSUPPORTED';
}

export type SemanticCheck = (spec: Spec) => ConfigProblem[];

const problem = (path: readonly PathSegment[], message: string): ConfigProblem => ({ field: formatPath(path), message });
const isAbsolute = (p: string): boolean => p.startsWith('/');
const needs = (ns: NamespaceType): string => `needs ${ns === 'ipc' ? 'an' : 'a'} ${ns} namespace in linux.namespaces`;

// SemVer 2.0.0, with the pre-release and build parts runtimes write ("1.0.2-dev").
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

/** ociVersion is SemVer and of major version 1 (the spec keeps compatibility only within a major). */
export function checkVersion(spec: Spec): ConfigProblem[] {
  const m = SEMVER.exec(spec.ociVersion);
  if (m === null) return [problem(['ociVersion'], `must be a SemVer version like "1.3.0", got ${quote(spec.ociVersion)}`)];
  if (m[1] !== '1') return [problem(['ociVersion'], `major version must be 1, got ${quote(spec.ociVersion)}`)];
  return [];
}

/** root is optional in the schema (Windows Hyper-V) but required on Linux. */
export function checkRoot(spec: Spec): ConfigProblem[] {
  if (spec.root === undefined) return [problem(['root'], 'is required on Linux')];
  if (spec.root.path === '') return [problem(['root', 'path'], 'must not be empty')];
  return [];
}

// Kernel IOPRIO levels for the RT and BE classes (IOPRIO_NR_LEVELS = 8).
const IOPRIO_MAX = 7;

/** The process to run: something to execute, an absolute cwd, a well-formed environment, sane umask. */
export function checkProcess(spec: Spec): ConfigProblem[] {
  const p = spec.process;
  if (p === undefined) return [];
  const out: ConfigProblem[] = [];
  if (p.args === undefined) out.push(problem(['process', 'args'], 'is required'));
  else if (p.args.length === 0) out.push(problem(['process', 'args'], 'must not be empty'));
  if (!isAbsolute(p.cwd)) out.push(problem(['process', 'cwd'], `must be an absolute path, got ${quote(p.cwd)}`));
  p.env?.forEach((entry, i) => {
    const eq = entry.indexOf('=');
    if (eq < 0) out.push(problem(['process', 'env', i], `must be NAME=value, got ${quote(entry)}`));
    else if (eq === 0) out.push(problem(['process', 'env', i], `has an empty name: ${quote(entry)}`));
  });
  const umask = p.user.umask;
  if (umask !== undefined && umask > 0o777) {
    out.push(problem(['process', 'user', 'umask'], `must be between 0 and 0o777 (511), got ${umask}`));
  }
  const io = p.ioPriority;
  if (io?.priority !== undefined && (io.priority < 0 || io.priority > IOPRIO_MAX)) {
    out.push(problem(['process', 'ioPriority', 'priority'], `must be between 0 and ${IOPRIO_MAX}, got ${io.priority}`));
  }
  return out;
}

const KNOWN_CAPABILITIES: ReadonlySet<string> = new Set(CAPABILITIES);

/** Every capability name is a CAP_* the kernel defines (runc only warns; an unknown name here is a typo). */
export function checkCapabilities(spec: Spec): ConfigProblem[] {
  const caps = spec.process?.capabilities;
  if (caps === undefined) return [];
  const out: ConfigProblem[] = [];
  for (const set of CAPABILITY_SETS) {
    caps[set]?.forEach((name, i) => {
      if (KNOWN_CAPABILITIES.has(name)) return;
      const hint = KNOWN_CAPABILITIES.has(`CAP_${name}`) ? ` (did you mean "CAP_${name}"?)` : '';
      out.push(problem(['process', 'capabilities', set, i], `unknown capability ${quote(name)}${hint}`));
    });
  }
  return out;
}

/** rlimits: known RLIMIT_* names, each at most once, soft <= hard. */
export function checkRlimits(spec: Spec): ConfigProblem[] {
  const rlimits = spec.process?.rlimits;
  if (rlimits === undefined) return [];
  const out: ConfigProblem[] = [];
  const seen = new Map<string, number>();
  rlimits.forEach((r, i) => {
    if (!Object.hasOwn(RLIMITS, r.type)) {
      out.push(problem(['process', 'rlimits', i, 'type'], `unknown rlimit ${quote(r.type)}`));
    } else {
      const first = seen.get(r.type);
      if (first !== undefined) {
        out.push(problem(['process', 'rlimits', i, 'type'], `duplicate rlimit ${quote(r.type)} (first at ${formatPath(['process', 'rlimits', first])})`));
      } else {
        seen.set(r.type, i);
      }
    }
    if (r.soft > r.hard) out.push(problem(['process', 'rlimits', i, 'soft'], `soft limit ${r.soft} exceeds hard limit ${r.hard}`));
  });
  return out;
}

/** sched_setattr(2) rules, as runc applies them. */
export function checkScheduler(spec: Spec): ConfigProblem[] {
  const s = spec.process?.scheduler;
  if (s === undefined) return [];
  const out: ConfigProblem[] = [];
  const at = (field: string): PathSegment[] => ['process', 'scheduler', field];
  if (s.nice !== undefined && (s.nice < -20 || s.nice > 19)) out.push(problem(at('nice'), `must be between -20 and 19, got ${s.nice}`));
  if (s.priority !== undefined && s.priority !== 0 && s.policy !== 'SCHED_FIFO' && s.policy !== 'SCHED_RR') {
    out.push(problem(at('priority'), `applies only to SCHED_FIFO and SCHED_RR, not ${s.policy}`));
  }
  if (s.policy !== 'SCHED_DEADLINE') {
    for (const field of ['runtime', 'deadline', 'period'] as const) {
      const v = s[field];
      if (v !== undefined && v !== 0) out.push(problem(at(field), `applies only to SCHED_DEADLINE, not ${s.policy}`));
    }
  }
  return out;
}

/** Hook paths are absolute (config.md extends execv's path rule so). */
export function checkHooks(spec: Spec): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const name of HOOK_NAMES) {
    spec.hooks?.[name]?.forEach((hook, i) => {
      if (!isAbsolute(hook.path)) out.push(problem(['hooks', name, i, 'path'], `must be an absolute path, got ${quote(hook.path)}`));
    });
  }
  return out;
}

/** Mount destinations are absolute, options make sense, and no id-mapped mount is asked for. */
export function checkMounts(spec: Spec): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  spec.mounts?.forEach((m, i) => {
    if (!isAbsolute(m.destination)) {
      out.push(problem(['mounts', i, 'destination'], `must be an absolute path, got ${quote(m.destination)}`));
    }
    try {
      parseMountOptions(m.options, formatPath(['mounts', i, 'options']));
    } catch (e) {
      if (!isStockadeError(e)) throw e;
      const field = typeof e.context['field'] === 'string' ? e.context['field'] : formatPath(['mounts', i, 'options']);
      const message = e.message.startsWith(`${field}: `) ? e.message.slice(field.length + 2) : e.message;
      out.push({ field, message, code: 'UNSUPPORTED' });
    }
    for (const key of ['uidMappings', 'gidMappings'] as const) {
      if (m[key] !== undefined) {
        out.push({ ...problem(['mounts', i, key], 'id-mapped mounts are not supported'), code: 'UNSUPPORTED' });
      }
    }
  });
  return out;
}

/** No namespace type twice (config-linux.md: MUST error); a namespace path is absolute. */
export function checkNamespaces(spec: Spec): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const seen = new Map<NamespaceType, number>();
  spec.linux?.namespaces?.forEach((ns, i) => {
    const first = seen.get(ns.type);
    if (first !== undefined) {
      out.push(problem(['linux', 'namespaces', i, 'type'], `duplicate namespace ${quote(ns.type)} (first at ${formatPath(['linux', 'namespaces', first])})`));
    } else {
      seen.set(ns.type, i);
    }
    if (ns.path !== undefined && !isAbsolute(ns.path)) {
      out.push(problem(['linux', 'namespaces', i, 'path'], `must be an absolute path, got ${quote(ns.path)}`));
    }
  });
  return out;
}

function namespaceOf(spec: Spec, type: NamespaceType): { path?: string } | undefined {
  return spec.linux?.namespaces?.find((ns) => ns.type === type);
}

// user_namespaces(7): since Linux 4.15 a map holds at most 340 lines.
const MAX_ID_MAP_LINES = 340;

/**
 * User namespace mappings. A new user namespace needs both maps (without them no id inside maps
 * to one outside and setup cannot even setgroups). Joining one by path together with mappings is
 * not refused: the spec does not forbid it and runc accepts it when the mappings match the joined
 * namespace, which only create can check.
 */
export function checkIdMappings(spec: Spec): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const userns = namespaceOf(spec, 'user');
  for (const key of ['uidMappings', 'gidMappings'] as const) {
    const maps = spec.linux?.[key];
    if (userns !== undefined && userns.path === undefined && (maps === undefined || maps.length === 0)) {
      out.push(problem(['linux', key], 'is required when a new user namespace is created'));
    }
    if (maps === undefined) continue;
    if (maps.length > MAX_ID_MAP_LINES) out.push(problem(['linux', key], `has ${maps.length} entries; the kernel takes at most ${MAX_ID_MAP_LINES}`));
    maps.forEach((m, i) => {
      if (m.size === 0) out.push(problem(['linux', key, i, 'size'], 'must be at least 1'));
    });
  }
  return out;
}

interface NamespaceNeed {
  path: readonly PathSegment[];
  ns: NamespaceType;
  present: (spec: Spec) => boolean;
}

// Settings that change a namespaced resource; without the namespace they would change the host's
// (or, for the mappings and offsets, have nothing to apply to). runc refuses the same set.
const NAMESPACE_NEEDS: readonly NamespaceNeed[] = [
  { path: ['hostname'], ns: 'uts', present: (s) => (s.hostname ?? '') !== '' },
  { path: ['domainname'], ns: 'uts', present: (s) => (s.domainname ?? '') !== '' },
  { path: ['linux', 'uidMappings'], ns: 'user', present: (s) => (s.linux?.uidMappings?.length ?? 0) > 0 },
  { path: ['linux', 'gidMappings'], ns: 'user', present: (s) => (s.linux?.gidMappings?.length ?? 0) > 0 },
  { path: ['linux', 'timeOffsets'], ns: 'time', present: (s) => s.linux?.timeOffsets !== undefined },
  { path: ['linux', 'maskedPaths'], ns: 'mount', present: (s) => (s.linux?.maskedPaths?.length ?? 0) > 0 },
  { path: ['linux', 'readonlyPaths'], ns: 'mount', present: (s) => (s.linux?.readonlyPaths?.length ?? 0) > 0 },
];

/** Settings that only make sense inside a namespace of their own. */
export function checkNamespaceNeeds(spec: Spec): ConfigProblem[] {
  return NAMESPACE_NEEDS
    .filter((need) => need.present(spec) && namespaceOf(spec, need.ns) === undefined)
    .map((need) => problem(need.path, needs(need.ns)));
}

interface SysctlRule {
  matches: (key: string) => boolean;
  /** The namespace that makes the key container-local; undefined: never allowed. */
  ns?: NamespaceType;
  refusal?: string;
}

const IPC_SYSCTLS: ReadonlySet<string> = new Set([
  'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem',
  'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced',
]);

// Only these sysctls are per-namespace; anything else written from inside a container would
// change the host kernel's setting.
const SYSCTL_RULES: readonly SysctlRule[] = [
  { matches: (k) => IPC_SYSCTLS.has(k) || k.startsWith('fs.mqueue.'), ns: 'ipc' },
  { matches: (k) => k.startsWith('net.'), ns: 'network' },
  { matches: (k) => k === 'kernel.domainname', ns: 'uts' },
  { matches: (k) => k === 'kernel.hostname', refusal: 'conflicts with the hostname field; set that instead' },
];

/** sysctl(8) accepts '/' as the separator when the first separator is '/'; normalise to dots. */
export function normaliseSysctlKey(key: string): string {
  const first = key.search(/[./]/);
  if (first < 0 || key[first] === '.') return key;
  return key.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
}

/**
 * Each sysctl must be one the container's own namespaces isolate. Joining a network namespace by
 * path that is in fact the host's is not detected here (it needs a stat of the path at create).
 */
export function checkSysctl(spec: Spec): ConfigProblem[] {
  const sysctl = spec.linux?.sysctl;
  if (sysctl === undefined) return [];
  const out: ConfigProblem[] = [];
  for (const raw of Object.keys(sysctl)) {
    const key = normaliseSysctlKey(raw);
    const rule = SYSCTL_RULES.find((r) => r.matches(key));
    const path = ['linux', 'sysctl', raw];
    if (rule === undefined) out.push(problem(path, 'is not namespaced: setting it would change the host'));
    else if (rule.refusal !== undefined) out.push(problem(path, rule.refusal));
    else if (rule.ns !== undefined && namespaceOf(spec, rule.ns) === undefined) {
      out.push(problem(path, needs(rule.ns)));
    }
  }
  return out;
}

/** Device nodes: absolute paths, and major/minor for every type but fifos. */
export function checkDevices(spec: Spec): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  spec.linux?.devices?.forEach((d, i) => {
    if (!isAbsolute(d.path)) out.push(problem(['linux', 'devices', i, 'path'], `must be an absolute path, got ${quote(d.path)}`));
    if (d.type === 'p') return;
    for (const key of ['major', 'minor'] as const) {
      if (d[key] === undefined) out.push(problem(['linux', 'devices', i, key], `is required for device type ${quote(d.type)}`));
    }
  });
  return out;
}

/** maskedPaths and readonlyPaths are absolute (config-linux.md MUST); rootfsPropagation is known. */
export function checkLinuxPaths(spec: Spec): ConfigProblem[] {
  const linux = spec.linux;
  if (linux === undefined) return [];
  const out: ConfigProblem[] = [];
  for (const key of ['maskedPaths', 'readonlyPaths'] as const) {
    linux[key]?.forEach((p, i) => {
      if (!isAbsolute(p)) out.push(problem(['linux', key, i], `must be an absolute path, got ${quote(p)}`));
    });
  }
  const prop = linux.rootfsPropagation;
  if (prop !== undefined && !(ROOTFS_PROPAGATIONS as readonly string[]).includes(prop)) {
    out.push(problem(['linux', 'rootfsPropagation'], `must be one of ${ROOTFS_PROPAGATIONS.join(', ')}, got ${quote(prop)}`));
  }
  return out;
}

/** closID names a resctrl directory: one path component. */
export function checkIntelRdt(spec: Spec): ConfigProblem[] {
  const clos = spec.linux?.intelRdt?.closID;
  if (clos === undefined || (clos !== '.' && clos !== '..' && !clos.includes('/'))) return [];
  return [problem(['linux', 'intelRdt', 'closID'], `must be a single directory name, got ${quote(clos)}`)];
}

/**
 * No string that reaches the kernel or stockade-init may hold a NUL byte: C would silently cut it
 * short there. Annotations are exempt; they never leave the TypeScript side.
 */
export function checkNulBytes(spec: Spec): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const walk = (value: unknown, path: PathSegment[]): void => {
    if (out.length > 0) return;
    if (typeof value === 'string') {
      if (value.includes('\0')) out.push(problem(path, 'must not contain a NUL byte'));
    } else if (Array.isArray(value)) {
      value.forEach((v: unknown, i) => walk(v, [...path, i]));
    } else if (typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) {
        if (path.length === 0 && k === 'annotations') continue;
        if (k.includes('\0')) out.push(problem([...path, k], 'must not contain a NUL byte in its name'));
        walk(v, [...path, k]);
      }
    }
  };
  walk(spec, []);
  return out;
}

/** Every semantic check, in the order their problems are reported. */
export const SEMANTIC_CHECKS: readonly SemanticCheck[] = [
  checkVersion,
  checkRoot,
  checkProcess,
  checkCapabilities,
  checkRlimits,
  checkScheduler,
  checkHooks,
  checkMounts,
  checkNamespaces,
  checkIdMappings,
  checkNamespaceNeeds,
  checkSysctl,
  checkDevices,
  checkLinuxPaths,
  checkIntelRdt,
  checkNulBytes,
];

export function runSemanticChecks(spec: Spec): ConfigProblem[] {
  return SEMANTIC_CHECKS.flatMap((check) => check(spec));
}
