// Turns an OCI `linux.seccomp` object into the rule model, with errors that name the offending field.
import { StockadeError } from '../errors';
import { EPERM, MAX_ERRNO, SECCOMP_RET_DATA } from './constants';
import type {
  ArgCondition, ArgIndex, CmpOp, SeccompAction, SeccompArch, SeccompFlag, SeccompProfile, SpecAction, SyscallRule,
} from './types';
import { CMP_OPS, SPEC_ARCHES, SPEC_FLAGS } from './types';

const ACTION_KINDS: Readonly<Record<SpecAction, SeccompAction['kind']>> = {
  SCMP_ACT_KILL: 'KILL_THREAD',
  SCMP_ACT_KILL_THREAD: 'KILL_THREAD',
  SCMP_ACT_KILL_PROCESS: 'KILL_PROCESS',
  SCMP_ACT_TRAP: 'TRAP',
  SCMP_ACT_ERRNO: 'ERRNO',
  SCMP_ACT_TRACE: 'TRACE',
  SCMP_ACT_ALLOW: 'ALLOW',
  SCMP_ACT_LOG: 'LOG',
  SCMP_ACT_NOTIFY: 'NOTIFY',
};

const UINT64_MAX = (1n << 64n) - 1n;

function fail(field: string, message: string): never {
  throw new StockadeError('SECCOMP_INVALID', `${field}: ${message}`, { field });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function get(obj: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

function optString(obj: Record<string, unknown>, key: string, field: string): string | undefined {
  const v = get(obj, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(`${field}.${key}`, `expected a string, got ${describe(v)}`);
  return v;
}

function optArray(obj: Record<string, unknown>, key: string, field: string): unknown[] | undefined {
  const v = get(obj, key);
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) fail(`${field}.${key}`, `expected an array, got ${describe(v)}`);
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return `a value of type ${typeof v}`;
}

function uint32(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    fail(field, `expected an unsigned 32-bit integer, got ${describe(v)}`);
  }
  return v;
}

/**
 * JSON numbers above 2^53 have already lost their low bits by the time they reach us, and a rule
 * compiled from a rounded value is a different rule. So such values are refused unless the caller
 * parsed config.json into bigints.
 */
function uint64(v: unknown, field: string): bigint {
  if (typeof v === 'bigint') {
    if (v < 0n || v > UINT64_MAX) fail(field, `${v} is not an unsigned 64-bit integer`);
    return v;
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    fail(field, `expected an unsigned 64-bit integer, got ${describe(v)}`);
  }
  if (!Number.isSafeInteger(v)) {
    fail(field, `${v} is above 2^53 and cannot be read exactly from a JSON number`);
  }
  return BigInt(v);
}

function parseAction(
  name: unknown, errnoRet: unknown, field: string, errnoField: string,
): SeccompAction {
  if (typeof name !== 'string') fail(field, `expected an action name, got ${describe(name)}`);
  const kind = Object.prototype.hasOwnProperty.call(ACTION_KINDS, name) ? ACTION_KINDS[name as SpecAction] : undefined;
  if (kind === undefined) fail(field, `unknown action ${JSON.stringify(name)}`);
  // The spec: an errno given with an action that takes none MUST fail; absent means EPERM.
  if (kind === 'ERRNO' || kind === 'TRACE') {
    if (errnoRet === undefined || errnoRet === null) {
      return kind === 'ERRNO' ? { kind, errno: EPERM } : { kind, data: EPERM };
    }
    const n = uint32(errnoRet, errnoField);
    // The kernel clamps ERRNO data to MAX_ERRNO and TRACE data to 16 bits; say so rather than
    // return a different errno than the one asked for.
    if (kind === 'ERRNO' && n > MAX_ERRNO) fail(errnoField, `${n} is not an errno (at most ${MAX_ERRNO})`);
    if (kind === 'TRACE' && n > SECCOMP_RET_DATA) fail(errnoField, `${n} does not fit the 16-bit SECCOMP_RET_DATA`);
    return kind === 'ERRNO' ? { kind, errno: n } : { kind, data: n };
  }
  if (errnoRet !== undefined && errnoRet !== null) {
    fail(errnoField, `${name} takes no errno; only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do`);
  }
  return { kind };
}

function parseArg(raw: unknown, field: string): ArgCondition {
  if (!isObject(raw)) fail(field, `expected an object, got ${describe(raw)}`);
  const index = get(raw, 'index');
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 5) {
    fail(`${field}.index`, `expected an argument index 0..5, got ${describe(index)}`);
  }
  const opName = get(raw, 'op');
  if (typeof opName !== 'string') fail(`${field}.op`, `expected an operator name, got ${describe(opName)}`);
  const op = opName.startsWith('SCMP_CMP_') ? opName.slice('SCMP_CMP_'.length) : '';
  if (!(CMP_OPS as readonly string[]).includes(op)) fail(`${field}.op`, `unknown operator ${JSON.stringify(opName)}`);
  const value = uint64(get(raw, 'value'), `${field}.value`);
  const two = get(raw, 'valueTwo');
  const valueTwo = two === undefined || two === null ? 0n : uint64(two, `${field}.valueTwo`);
  return { index: index as ArgIndex, op: op as CmpOp, value, valueTwo };
}

function parseRule(raw: unknown, field: string): SyscallRule {
  if (!isObject(raw)) fail(field, `expected an object, got ${describe(raw)}`);
  const names = get(raw, 'names');
  if (!Array.isArray(names) || names.length === 0) fail(`${field}.names`, 'expected a non-empty array of syscall names');
  names.forEach((n: unknown, i) => {
    if (typeof n !== 'string' || n === '') fail(`${field}.names[${i}]`, `expected a syscall name, got ${describe(n)}`);
  });
  const action = parseAction(get(raw, 'action'), get(raw, 'errnoRet'), `${field}.action`, `${field}.errnoRet`);
  const args = (optArray(raw, 'args', field) ?? []).map((a, i) => parseArg(a, `${field}.args[${i}]`));
  return { names: names as string[], action, args };
}

/**
 * Parses `linux.seccomp`. The schema has usually been checked already; this checks again what
 * the compiler relies on, and what the runtime-spec requires beyond the schema.
 */
export function parseSeccomp(raw: unknown, field = 'linux.seccomp'): SeccompProfile {
  if (!isObject(raw)) fail(field, `expected an object, got ${describe(raw)}`);

  const defaultAction = parseAction(
    get(raw, 'defaultAction'), get(raw, 'defaultErrnoRet'), `${field}.defaultAction`, `${field}.defaultErrnoRet`,
  );
  // Every syscall the process makes after the filter is in place would wait for a listener that
  // only learns of the filter through those very syscalls (runc refuses this too).
  if (defaultAction.kind === 'NOTIFY') fail(`${field}.defaultAction`, 'SCMP_ACT_NOTIFY cannot be the default action');

  const architectures: SeccompArch[] = [];
  (optArray(raw, 'architectures', field) ?? []).forEach((a, i) => {
    if (typeof a !== 'string' || !(SPEC_ARCHES as readonly string[]).includes(a)) {
      fail(`${field}.architectures[${i}]`, `unknown architecture ${describe(a)}`);
    }
    if (!architectures.includes(a as SeccompArch)) architectures.push(a as SeccompArch);
  });

  const flags: SeccompFlag[] = [];
  (optArray(raw, 'flags', field) ?? []).forEach((f, i) => {
    if (typeof f !== 'string' || !(SPEC_FLAGS as readonly string[]).includes(f)) {
      fail(`${field}.flags[${i}]`, `unknown flag ${describe(f)}`);
    }
    if (!flags.includes(f as SeccompFlag)) flags.push(f as SeccompFlag);
  });

  const listenerPath = optString(raw, 'listenerPath', field);
  const listenerMetadata = optString(raw, 'listenerMetadata', field);
  const syscalls = (optArray(raw, 'syscalls', field) ?? []).map((r, i) => parseRule(r, `${field}.syscalls[${i}]`));

  const notifyAt = syscalls.findIndex((r) => r.action.kind === 'NOTIFY');
  if (notifyAt >= 0 && (listenerPath === undefined || listenerPath === '')) {
    fail(`${field}.listenerPath`, `must be set: ${field}.syscalls[${notifyAt}] uses SCMP_ACT_NOTIFY`);
  }

  return {
    defaultAction,
    architectures,
    flags,
    syscalls,
    ...(listenerPath !== undefined ? { listenerPath } : {}),
    ...(listenerMetadata !== undefined ? { listenerMetadata } : {}),
  };
}
