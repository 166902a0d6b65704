// A content-addressed cache of compiled filters, so a CLI call that loads a known profile skips the compiler.
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SYSCALL_TABLES_DIGEST } from '../abi/linux/syscalls-digest';
import { actionValue } from './actions';
import { nativeArch } from './arch';
import type { CompiledFilter, CompileOptions } from './compile';
import { compile, COMPILER_VERSION } from './compile';
import { checkProgram } from './interpreter';
import type { SeccompArch, SeccompProfile } from './types';
import { SPEC_ARCHES } from './types';

export interface CachedFilter extends CompiledFilter {
  /** true when the program came from the cache */
  readonly cached: boolean;
  readonly cacheFile: string;
}

/**
 * JSON with object keys sorted and bigints spelled out, so equal profiles hash equally however
 * their objects were built.
 */
export function canonicalJson(v: unknown): string {
  if (typeof v === 'bigint') return JSON.stringify(`${v}n`);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const obj = v as Record<string, unknown>;
    return `{${Object.keys(obj).filter((k) => obj[k] !== undefined).sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** Everything the compiled program depends on, as one string: what a cached record must match exactly. */
function cacheInput(profile: SeccompProfile, opts: CompileOptions): string {
  return canonicalJson({
    compiler: COMPILER_VERSION,
    // The syscall tables are an input of the compiler as much as the profile is.
    tables: SYSCALL_TABLES_DIGEST,
    arch: opts.arch ?? nativeArch(),
    badArch: opts.badArchAction === undefined ? null : actionValue(opts.badArchAction),
    enosys: opts.enosysForNewerSyscalls ?? true,
    profile,
  });
}

/**
 * FNV-1a over the input's UTF-8 bytes, four at a time, with the length: only a file name. Two
 * inputs that share it share a file, and each finds the other's record there by the whole input
 * it holds, a miss; so the name needs no cryptographic hash, whose module (node:crypto) costs a
 * CLI call and the sentry process some 8 million instructions (callgrind) to load. Four bytes a
 * step keep the loop short enough that V8 does not stop to optimize it.
 */
function nameOf(input: string): string {
  const bytes = Buffer.alloc((Buffer.byteLength(input) + 3) & ~3);
  bytes.write(input);
  // Buffer.alloc gives a buffer of its own, at offset 0: a word view of it is aligned.
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  let h = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ (words[i] ?? 0), 0x01000193);
  return `${(h >>> 0).toString(16).padStart(8, '0')}-${input.length.toString(16)}`;
}

/** The cache file's name (without .json) for `profile` compiled with `opts`. */
export function cacheKey(profile: SeccompProfile, opts: CompileOptions = {}): string {
  return nameOf(cacheInput(profile, opts));
}

interface CacheRecord {
  compiler: number;
  key: string;
  /** cacheInput(): a record is used only for this exact input, whatever file name it shares. */
  input: string;
  program: string;
  instructions: number;
  flags: number;
  notify: boolean;
  arches: string[];
  skippedArchitectures: string[];
  skippedSyscalls: string[];
}

function isArchList(v: unknown): v is SeccompArch[] {
  return Array.isArray(v) && v.every((a) => typeof a === 'string' && (SPEC_ARCHES as readonly string[]).includes(a));
}

/** The cached filter, or undefined when the file is missing, stale or damaged in any way. */
function readRecord(file: string, key: string, input: string): CompiledFilter | undefined {
  let rec: Partial<CacheRecord>;
  try {
    rec = JSON.parse(readFileSync(file, 'utf8')) as Partial<CacheRecord>;
  } catch {
    return undefined; // missing, unreadable or not JSON: compile afresh
  }
  if (typeof rec !== 'object' || rec === null || rec.compiler !== COMPILER_VERSION || rec.key !== key || rec.input !== input) return undefined;
  if (typeof rec.program !== 'string' || typeof rec.instructions !== 'number') return undefined;
  if (typeof rec.flags !== 'number' || typeof rec.notify !== 'boolean') return undefined;
  if (!isArchList(rec.arches) || !isArchList(rec.skippedArchitectures)) return undefined;
  if (!Array.isArray(rec.skippedSyscalls) || !rec.skippedSyscalls.every((s) => typeof s === 'string')) return undefined;
  const program = Buffer.from(rec.program, 'base64');
  if (program.length !== rec.instructions * 8) return undefined;
  try {
    checkProgram(program); // a truncated or hand-edited file must not reach the kernel
  } catch {
    return undefined;
  }
  return {
    program,
    instructions: rec.instructions,
    flags: rec.flags,
    notify: rec.notify,
    arches: rec.arches,
    skippedArchitectures: rec.skippedArchitectures,
    skippedSyscalls: rec.skippedSyscalls,
  };
}

/** Names a cache file's temporary twin apart from another writer's (the write is exclusive: a clash only skips the cache). */
let tmpSerial = 0;

/**
 * compile(), through a cache under `cacheDir` keyed by (compiler version, syscall tables,
 * options, profile), held whole in each record. The file appears whole or not at all (written
 * aside, then renamed), so concurrent CLI calls never read half a program.
 */
export function compileCached(profile: SeccompProfile, opts: CompileOptions, cacheDir: string): CachedFilter {
  const input = cacheInput(profile, opts);
  const key = nameOf(input);
  const cacheFile = join(cacheDir, `${key}.json`);
  const hit = readRecord(cacheFile, key, input);
  if (hit !== undefined) return { ...hit, cached: true, cacheFile };

  const compiled = compile(profile, opts);
  const rec: CacheRecord = {
    compiler: COMPILER_VERSION,
    key,
    input,
    program: compiled.program.toString('base64'),
    instructions: compiled.instructions,
    flags: compiled.flags,
    notify: compiled.notify,
    arches: [...compiled.arches],
    skippedArchitectures: [...compiled.skippedArchitectures],
    skippedSyscalls: [...compiled.skippedSyscalls],
  };
  const tmp = join(cacheDir, `.${key}.${process.pid}.${Date.now()}.${tmpSerial++}.tmp`);
  try {
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    writeFileSync(tmp, JSON.stringify(rec), { mode: 0o600, flag: 'wx' });
    renameSync(tmp, cacheFile);
  } catch {
    // The cache only saves time: a full or read-only disk must not fail the container.
    try {
      unlinkSync(tmp);
    } catch {
      // never created
    }
  }
  return { ...compiled, cached: false, cacheFile };
}
