// A runc-compatible flag parser: --flag value, --flag=value, -flag value, short aliases, "--" ends flags.
import { StockadeError } from '../errors';

export type FlagType = 'bool' | 'string' | 'int' | 'list';

export interface FlagSpec {
  name: string;
  type: FlagType;
  short?: string;
  /** Accepted and ignored, as runc accepts flags it no longer acts on. */
  ignored?: boolean;
}

export interface Parsed {
  flags: Map<string, string | boolean | string[]>;
  positional: string[];
}

export interface ParseOptions {
  /** After this many positional arguments everything else is positional (exec ID CMD ARGS...). */
  stopAfterPositionals?: number;
}

export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], context: string, options: ParseOptions = {}): Parsed {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(s.name, s);
    if (s.short !== undefined) byName.set(s.short, s);
  }
  const flags = new Map<string, string | boolean | string[]>();
  const positional: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i] ?? '';
    i++;
    if (arg === '--') {
      positional.push(...argv.slice(i));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      if (options.stopAfterPositionals !== undefined && positional.length >= options.stopAfterPositionals) {
        positional.push(...argv.slice(i));
        break;
      }
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const spec = byName.get(name);
    if (spec === undefined) {
      const help = context === 'stockade' ? 'stockade --help' : `stockade ${context} --help`;
      throw new StockadeError('USAGE', `${context}: unknown flag ${arg.split('=')[0] ?? arg} (see ${help})`, { flag: arg });
    }
    let value: string | undefined = eq < 0 ? undefined : body.slice(eq + 1);
    if (spec.type === 'bool') {
      if (value !== undefined && value !== 'true' && value !== 'false') {
        throw new StockadeError('USAGE', `${context}: flag --${spec.name} takes true or false, not ${JSON.stringify(value)}`, { flag: spec.name });
      }
      flags.set(spec.name, value !== 'false');
      continue;
    }
    if (value === undefined) {
      if (i >= argv.length) throw new StockadeError('USAGE', `${context}: flag --${spec.name} needs a value`, { flag: spec.name });
      value = argv[i] ?? '';
      i++;
    }
    if (spec.type === 'int' && !/^-?\d+$/.test(value)) {
      throw new StockadeError('USAGE', `${context}: flag --${spec.name} needs an integer, not ${JSON.stringify(value)}`, { flag: spec.name });
    }
    if (spec.type === 'list') {
      const prev = flags.get(spec.name);
      flags.set(spec.name, [...(Array.isArray(prev) ? prev : []), value]);
    } else {
      flags.set(spec.name, value);
    }
  }
  return { flags, positional };
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function bool(p: Parsed, name: string): boolean {
  return p.flags.get(name) === true;
}

export function int(p: Parsed, name: string, fallback: number): number {
  const v = p.flags.get(name);
  return typeof v === 'string' ? Number(v) : fallback;
}

export function list(p: Parsed, name: string): string[] {
  const v = p.flags.get(name);
  return Array.isArray(v) ? v : [];
}
