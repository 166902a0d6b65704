// The process `exec` starts: the container's process, or a --process file, with the command line's flags over it, as runc builds it.
import { CAPABILITIES, type CapabilityName } from '../abi/linux/constants';
import { StockadeError, isStockadeError } from '../errors';
import { readInputFile } from '../oci/input-file';
import type { Process, Spec } from '../oci/spec';
import { parseJson, validateConfig } from '../oci/validate';

/** What the command line says about the process; every field is optional and overrides the base. */
export interface ExecProcessFlags {
  /** An OCI `process` object (JSON) that replaces the container's process as the base. */
  processFile?: string | undefined;
  /** The command and its arguments; empty keeps those of the --process file. */
  args: readonly string[];
  /** --tty: true allocates a pty; undefined keeps the --process file's choice (none without one). */
  tty?: boolean | undefined;
  /** With a pty: its size before the process runs (the SDK's spawn({ tty })). */
  consoleSize?: { height: number; width: number } | undefined;
  cwd?: string | undefined;
  /** K=V entries: each replaces the base's entry of the same name or is appended. */
  env: readonly string[];
  /** UID[:GID], numeric as runc takes it. */
  user?: string | undefined;
  additionalGids: readonly string[];
  /** Added to the bounding, effective and permitted sets (and ambient where inheritable is set). */
  caps: readonly string[];
  noNewPrivs?: boolean | undefined;
  processLabel?: string | undefined;
  apparmor?: string | undefined;
}

// The fields runc falls back to the container's when a --process file leaves them out.
const INHERITED = ['capabilities', 'rlimits', 'noNewPrivileges', 'apparmorProfile', 'selinuxLabel'] as const;

/** The validated process to exec in the container whose config is `config`. */
export function execProcess(config: Spec, flags: ExecProcessFlags): Process {
  const base = flags.processFile === undefined ? containerProcess(config) : processFromFile(config, flags.processFile);
  const p: Process = structuredClone(base);
  if (flags.args.length > 0) p.args = [...flags.args];
  // As runc: a pty only when asked for, on the command line or in the --process file.
  if (flags.tty !== undefined) p.terminal = flags.tty;
  else if (flags.processFile === undefined) p.terminal = false;
  if (flags.consoleSize !== undefined && p.terminal === true) p.consoleSize = { ...flags.consoleSize };
  if (flags.cwd !== undefined) {
    if (!flags.cwd.startsWith('/')) throw usage(`--cwd must be an absolute path, not ${JSON.stringify(flags.cwd)}`);
    p.cwd = flags.cwd;
  }
  if (flags.env.length > 0) p.env = mergeEnv(p.env ?? [], flags.env);
  if (flags.user !== undefined) {
    const m = /^(\d+)(?::(\d+))?$/.exec(flags.user);
    if (m === null) throw usage(`--user must be UID or UID:GID in numbers, not ${JSON.stringify(flags.user)}`);
    p.user = { ...p.user, uid: idNumber(m[1] ?? '', '--user'), gid: m[2] === undefined ? p.user.gid : idNumber(m[2], '--user') };
  }
  if (flags.additionalGids.length > 0) {
    const gids = flags.additionalGids.map((g) => {
      if (!/^\d+$/.test(g)) throw usage(`--additional-gids must be a non-negative number, not ${JSON.stringify(g)}`);
      return idNumber(g, '--additional-gids');
    });
    p.user = { ...p.user, additionalGids: [...(p.user.additionalGids ?? []), ...gids] };
  }
  if (flags.caps.length > 0) addCapabilities(p, flags.caps.map(capabilityName));
  if (flags.noNewPrivs !== undefined) p.noNewPrivileges = flags.noNewPrivs;
  if (flags.processLabel !== undefined && flags.processLabel !== '') p.selinuxLabel = flags.processLabel;
  if (flags.apparmor !== undefined && flags.apparmor !== '') p.apparmorProfile = flags.apparmor;
  return validated(config, p, flags.processFile);
}

function containerProcess(config: Spec): Process {
  if (config.process === undefined) throw new StockadeError('CONFIG_INVALID', 'config.json: process: the container has none to base exec on', { field: 'process' });
  return config.process;
}

function processFromFile(config: Spec, path: string): Process {
  const read = readInputFile(path);
  if (!read.ok) throw new StockadeError('USAGE', `exec: --process ${path} ${read.problem}`, { path });
  const value = parseJson(read.text, path);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new StockadeError('CONFIG_INVALID', `${path}: must be a JSON object (an OCI process)`, { source: path });
  }
  const file = value as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...file };
  const fallback = config.process as unknown as Record<string, unknown> | undefined;
  for (const key of INHERITED) if (merged[key] === undefined && fallback?.[key] !== undefined) merged[key] = fallback[key];
  // As runc, whose process file is decoded into a struct: a file that names no user runs as 0:0
  // (the config's user is not inherited: runc's zero value, not the container's).
  if (merged['user'] === undefined) merged['user'] = { uid: 0, gid: 0 };
  // Its shape is checked with everything else once the flags are applied (see validated).
  return merged as unknown as Process;
}

/** Runs the config validator over the container's config with this process in it: one set of rules for create and exec. */
function validated(config: Spec, p: Process, file: string | undefined): Process {
  const source = file ?? 'exec';
  try {
    const spec = validateConfig({ ...config, process: p }, 'exec');
    return spec.process ?? p;
  } catch (e) {
    if (!isStockadeError(e)) throw e;
    const field = typeof e.context['field'] === 'string' ? e.context['field'] : '';
    // The file's root is the process object: name its fields as they appear in it.
    const inFile = file !== undefined && field.startsWith('process');
    const shown = inFile ? field.replace(/^process\.?/, '') : field;
    const detail = e.message.startsWith(`exec: ${field}: `) ? e.message.slice(`exec: ${field}: `.length) : e.message.replace(/^exec: /, '');
    throw new StockadeError(e.code, `${source}: ${shown === '' ? '' : `${shown}: `}${detail}`, { ...e.context, source, field: shown });
  }
}

function mergeEnv(base: readonly string[], extra: readonly string[]): string[] {
  const out = [...base];
  for (const entry of extra) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw usage(`--env must be NAME=value, not ${JSON.stringify(entry)}`);
    const name = entry.slice(0, eq + 1);
    const at = out.findIndex((e) => e.startsWith(name));
    if (at >= 0) out[at] = entry;
    else out.push(entry);
  }
  return out;
}

function idNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n > 0xfffffffe) throw usage(`${flag}: id ${text} is out of range`);
  return n;
}

const KNOWN: ReadonlySet<string> = new Set(CAPABILITIES);

function capabilityName(raw: string): CapabilityName {
  const name = raw.toUpperCase().startsWith('CAP_') ? raw.toUpperCase() : `CAP_${raw.toUpperCase()}`;
  if (!KNOWN.has(name)) throw usage(`--cap: unknown capability ${JSON.stringify(raw)}`);
  return name as CapabilityName;
}

function addCapabilities(p: Process, names: readonly CapabilityName[]): void {
  // No capabilities in the base means the process keeps all the runtime holds: nothing to add.
  if (p.capabilities === undefined) return;
  const caps = p.capabilities;
  const add = (set: string[] | undefined): string[] => [...new Set([...(set ?? []), ...names])];
  caps.bounding = add(caps.bounding);
  caps.effective = add(caps.effective);
  caps.permitted = add(caps.permitted);
  // As runc: --cap does not grant inheritable, without which the kernel raises no ambient
  // capability, so ambient is only added where the base has an inheritable set at all.
  if (caps.inheritable !== undefined) caps.ambient = add(caps.ambient);
}

function usage(message: string): StockadeError {
  return new StockadeError('USAGE', `exec: ${message}`);
}
