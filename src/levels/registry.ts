// The registry: the one list of isolation levels. The CLI's --isolation check, `do --isolation`,
// the dev.stockade.isolation annotation, `features`, the help text and every verb's driver come
// from here. Adding a level is a folder with its driver and one entry below (docs/design/levels.md).
import type { LevelDriver, LevelEntry, Levels } from '../container/level';
import { StockadeError } from '../errors';
import type { Logger } from '../log/logger';

/** What a driver may need from the call that loads it. */
export interface LevelEnv {
  readonly log: Logger;
  /** The state root (--root). */
  readonly root: string;
}

interface Registered extends LevelEntry {
  /** Loads the driver: required on first use, so a call pays only for the level it acts on. Undefined while unavailable. */
  readonly load: ((env: LevelEnv) => LevelDriver) | undefined;
}

/** The host-process driver (src/namespaces/driver.ts), loaded when a level needs it. */
function hostProcessDriver(): typeof import('../namespaces/driver').hostProcessDriver {
  return (require('../namespaces/driver') as typeof import('../namespaces/driver')).hostProcessDriver;
}

/** The level of a container when neither --isolation nor its config names one. */
export const DEFAULT_LEVEL = 'namespaces';

const REGISTRY: readonly Registered[] = [
  {
    name: 'namespaces',
    help: 'namespaces, cgroups, capabilities, seccomp-bpf: the wall runc and crun give',
    light: true,
    networkPolicy: false,
    trace: false,
    unavailable: undefined,
    load: () => hostProcessDriver()({ name: 'namespaces' }),
  },
  {
    name: 'sentry',
    help: 'namespaces plus a user-space kernel that serves every path, socket and identity call',
    // Its workload is a host process: start socket, pidfd and cgroups as at namespaces; the
    // sentry's watch, not the caller, kills it if the sentry dies.
    light: true,
    networkPolicy: true,
    trace: true,
    unavailable: undefined,
    load: (env) => (require('../sentry/driver') as typeof import('../sentry/driver'))
      .sentryDriver(env, (supervised) => hostProcessDriver()({ name: 'sentry', supervised })),
  },
  {
    name: 'vm',
    help: 'a microVM per container, with its own guest kernel',
    // Its workload is in a guest: the light entry cannot read it.
    light: false,
    networkPolicy: false,
    trace: false,
    unavailable: undefined,
    load: () => (require('../vm/driver') as typeof import('../vm/driver')).vmDriver,
  },
];

/** The levels, their drivers loaded on first use, with `defaultLevel` for a config that names none. */
export function levelRegistry(env: LevelEnv, defaultLevel: string): Levels {
  const loaded = new Map<string, LevelDriver>();
  const entry = (name: string): Registered | undefined => REGISTRY.find((l) => l.name === name);
  return {
    entries: REGISTRY,
    default: defaultLevel,
    entry,
    driver(name) {
      const known = loaded.get(name);
      if (known !== undefined) return known;
      const level = entry(name);
      if (level === undefined) throw new StockadeError('UNSUPPORTED', `level ${JSON.stringify(name)} is not one this build knows: ${levelNames().join(', ')}`, { level: name });
      if (level.load === undefined) throw new StockadeError('UNSUPPORTED', `the ${name} level is not available yet: ${level.unavailable ?? 'it has no driver'}`, { level: name });
      const driver = level.load(env);
      loaded.set(name, driver);
      return driver;
    },
  };
}

/** Every level, in the registry's order (help text, features). */
export const LEVELS: readonly LevelEntry[] = REGISTRY;

/** Every level's name, in the registry's order. */
export function levelNames(): string[] {
  return REGISTRY.map((l) => l.name);
}

/** The names of the levels this build can run. */
export function availableLevels(): string[] {
  return REGISTRY.filter((l) => l.unavailable === undefined).map((l) => l.name);
}

/** The registry's entry of that name. */
export function levelEntry(name: string): LevelEntry | undefined {
  return REGISTRY.find((l) => l.name === name);
}
