// stockade update [--resources FILE|-] [limit flags] ID: new limits for a live container, as runc update takes them.
import { readFileSync } from 'node:fs';
import { readStdin } from '../log/logger';
import { parseContainerId } from '../container/id';
import { parseResources, updateContainer } from '../container/update';
import { StockadeError } from '../errors';
import type { Resources } from '../oci/spec';
import { parseArgs, str, type FlagSpec, type Parsed } from './args';
import type { Command } from './context';
import { parseMemory } from './units';

const MEMORY_FLAGS = [
  ['memory', 'limit'], ['memory-swap', 'swap'], ['memory-reservation', 'reservation'],
  ['kernel-memory', 'kernel'], ['kernel-memory-tcp', 'kernelTCP'],
] as const;

const CPU_INT_FLAGS = [
  ['cpu-period', 'period'], ['cpu-quota', 'quota'], ['cpu-share', 'shares'], ['cpu-shares', 'shares'],
  ['cpu-rt-period', 'realtimePeriod'], ['cpu-rt-runtime', 'realtimeRuntime'], ['cpu-burst', 'burst'], ['cpu-idle', 'idle'],
] as const;

export const UPDATE_FLAGS: readonly FlagSpec[] = [
  { name: 'resources', type: 'string', short: 'r' },
  ...MEMORY_FLAGS.map(([name]): FlagSpec => ({ name, type: 'string' })),
  ...CPU_INT_FLAGS.map(([name]): FlagSpec => ({ name, type: 'int' })),
  { name: 'cpuset-cpus', type: 'string' },
  { name: 'cpuset-mems', type: 'string' },
  { name: 'pids-limit', type: 'int' },
  { name: 'blkio-weight', type: 'int' },
  { name: 'l3-cache-schema', type: 'string' },
  { name: 'mem-bw-schema', type: 'string' },
];

/** The resources named by --resources (a file, or - for stdin), then the flags laid over them. */
async function requested(p: Parsed): Promise<Resources> {
  const file = str(p, 'resources');
  let r: Resources = {};
  if (file !== undefined) {
    let text: string;
    try {
      // The caller's stdin: in the planner, its front reads it (log/logger.ts).
      text = file === '-' ? (await readStdin()).toString('utf8') : readFileSync(file, 'utf8');
    } catch (e) {
      throw new StockadeError('USAGE', `update: cannot read --resources ${file}: ${(e as Error).message}`, { path: file });
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new StockadeError('USAGE', `update: --resources ${file === '-' ? '(stdin)' : file}: not JSON: ${(e as Error).message}`, { path: file });
    }
    r = parseResources(value, `update --resources ${file === '-' ? '(stdin)' : file}`);
  }
  for (const [flag, key] of MEMORY_FLAGS) {
    const v = str(p, flag);
    if (v !== undefined && v !== '') r.memory = { ...r.memory, [key]: parseMemory(v, flag) };
  }
  for (const [flag, key] of CPU_INT_FLAGS) {
    const v = str(p, flag);
    if (v !== undefined) r.cpu = { ...r.cpu, [key]: Number(v) };
  }
  const cpus = str(p, 'cpuset-cpus');
  if (cpus !== undefined) r.cpu = { ...r.cpu, cpus };
  const mems = str(p, 'cpuset-mems');
  if (mems !== undefined) r.cpu = { ...r.cpu, mems };
  const pids = str(p, 'pids-limit');
  if (pids !== undefined) r.pids = { limit: Number(pids) };
  const weight = str(p, 'blkio-weight');
  if (weight !== undefined) r.blockIO = { ...r.blockIO, weight: Number(weight) };
  return r;
}

export const command: Command = {
  summary: 'update the resource limits of a container',
  usage: 'stockade update [--resources FILE|-] [--memory N --memory-swap N --memory-reservation N --kernel-memory-tcp N --cpu-shares N --cpu-quota N --cpu-period N --cpu-rt-runtime N --cpu-rt-period N --cpuset-cpus LIST --cpuset-mems LIST --pids-limit N --blkio-weight N] ID',
  async run(argv, ctx) {
    const p = parseArgs(argv, UPDATE_FLAGS, 'update');
    if (p.positional.length !== 1) throw new StockadeError('USAGE', 'update: expects exactly one container id');
    const id = parseContainerId(p.positional[0]);
    if (str(p, 'l3-cache-schema') !== undefined || str(p, 'mem-bw-schema') !== undefined) {
      throw new StockadeError('UNSUPPORTED', 'update: Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported by stockade');
    }
    if (p.flags.size === 0) throw new StockadeError('USAGE', 'update: nothing to update: give --resources or a limit flag');
    await updateContainer(ctx.store, ctx.levels, id, await requested(p), (m) => ctx.log.warn(m));
    return 0;
  },
};
