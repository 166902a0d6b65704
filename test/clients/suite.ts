// Declares one client's node:test suite: its daemons up in before(), every scenario under each runtime, all down in after().
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { integrationSkip } from '../integration/harness';
import { vmSkip } from '../integration/vm-helpers';
import type { Client, RuntimeName } from './client';
import { makeStateDir } from './daemons';
import { buildImageArchive } from './image';
import { SCENARIOS } from './scenarios';

export interface StartedClient {
  readonly client: Client;
  /** Removes every container, stops every daemon, deletes the state; returns what had to be swept up. */
  stop(): Promise<string[]>;
}

export interface ClientTier {
  readonly name: Client['name'];
  /** Why the client is not usable here (not installed), or undefined. */
  missing(): string | undefined;
  /**
   * Scenarios this client cannot express at all (scenario id, or id@runtime for one runtime ->
   * why), declared here so they skip before they start; a scenario that finds a gap while it runs fails.
   */
  readonly lacks?: Readonly<Record<string, string>>;
  start(dir: string, archive: string): Promise<StartedClient>;
}

/**
 * STOCKADE_CLIENT_TESTS=full runs every scenario under stockade and runc; otherwise (npm test)
 * the scenarios marked trimmed run under stockade alone.
 */
export function fullTier(): boolean {
  return process.env['STOCKADE_CLIENT_TESTS'] === 'full';
}

type Outcome = 'pass' | 'fail' | 'skip';

// One JSON line per scenario run, for run-full.sh's matrix.
function record(client: string, runtime: RuntimeName, scenario: string, outcome: Outcome, ms: number, note = ''): void {
  const file = process.env['STOCKADE_CLIENT_MATRIX'];
  if (file !== undefined && file !== '') appendFileSync(file, `${JSON.stringify({ client, runtime, scenario, outcome, ms, note })}\n`);
}

/**
 * Every scenario runs at the vm level too (stockade-vm), but those named here (id -> why), which
 * go into the matrix as skips at vm. Where a client cannot say something at vm, the scenario says
 * so (oom's OOMKilled under docker and ctr: VM_OOM_UNREPORTED) or the tier lacks it (id@stockade-vm).
 */
export const VM_EXCLUDED: Readonly<Record<string, string>> = {};

/** Cells that cannot pass at the sentry level, per client, with why (they go into the matrix as skips). */
export const SENTRY_EXCLUDED: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  podman: {
    top: 'podman (psgo) enters the container\'s mount namespace and reads /proc there; at sentry that namespace holds only the root file system (the sentry serves the workload\'s /proc itself), so podman finds no processes (docker runs ps on the host instead)',
  },
};

export function clientSuite(tier: ClientTier): void {
  const full = fullTier();
  // The sentry level in the full tier only (the trimmed tier of npm test keeps its time).
  const runtimes: RuntimeName[] = full ? ['stockade', 'runc', 'stockade-sentry', 'stockade-vm'] : ['stockade', 'stockade-vm'];
  const skip = integrationSkip() ?? tier.missing();
  const vmSkipped = vmSkip();

  describe(`${tier.name} client`, { skip: skip ?? false }, () => {
    let dir = '';
    let started: StartedClient | undefined;

    // An installed client whose daemons do not come up is a failure of every scenario, not a skip:
    // a broken start must turn the run red.
    before(async () => {
      dir = makeStateDir(tier.name);
      const imageDir = join(dir, 'image');
      mkdirSync(imageDir);
      const archive = buildImageArchive(imageDir);
      started = await tier.start(join(dir, 'state'), archive);
    });

    after(async () => {
      const left = (await started?.stop()) ?? [];
      rmSync(dir, { recursive: true, force: true });
      if (left.length > 0) throw new Error(`${tier.name}: had to sweep up after stopping:\n${left.join('\n')}`);
    });

    for (const rt of runtimes) {
      const scenarios = SCENARIOS.filter((s) => (full || s.trimmed) && (rt !== 'stockade-vm' || VM_EXCLUDED[s.id] === undefined));
      if (rt === 'stockade-vm' && vmSkipped === undefined) {
        for (const s of SCENARIOS) {
          const why = VM_EXCLUDED[s.id];
          if ((full || s.trimmed) && why !== undefined) record(tier.name, rt, s.id, 'skip', 0, `not at vm: ${why}`);
        }
      }
      describe(rt, { skip: rt === 'stockade-vm' ? vmSkipped ?? false : false }, () => {
        for (const scenario of scenarios) {
          const lacks = tier.lacks?.[`${scenario.id}@${rt}`] ?? tier.lacks?.[scenario.id] ?? (rt === 'stockade-sentry' ? SENTRY_EXCLUDED[tier.name]?.[scenario.id] : undefined);
          if (lacks !== undefined) record(tier.name, rt, scenario.id, 'skip', 0, lacks);
          test(scenario.title, { skip: lacks ?? false }, async (t: TestContext) => {
            const startedAt = Date.now();
            if (started === undefined) throw new Error(`${tier.name} did not start (see the before hook's failure)`);
            const names: string[] = [];
            const scratch = join(dir, 'scratch', `${scenario.id}-${rt}`);
            mkdirSync(scratch, { recursive: true, mode: 0o755 });
            const ctx: ScenarioContext = {
              client: started.client, rt, t, scratch, full,
              name: (part = '') => {
                const n = `${scenario.id}${part === '' ? '' : `-${part}`}-${rt}`;
                names.push(n);
                return n;
              },
            };
            try {
              await scenario.run(ctx);
              record(tier.name, rt, scenario.id, 'pass', Date.now() - startedAt, ctx.note ?? '');
            } catch (e) {
              record(tier.name, rt, scenario.id, 'fail', Date.now() - startedAt, e instanceof Error ? e.message.split('\n')[0] ?? '' : String(e));
              throw e;
            } finally {
              for (const n of names) await started.client.remove(n).catch(() => undefined);
            }
          });
        }
      });
    }
  });
}

export interface ScenarioContext {
  readonly client: Client;
  readonly rt: RuntimeName;
  readonly t: TestContext;
  /** A host directory of the scenario's own, for bind mounts. */
  readonly scratch: string;
  /** The full tier (run-full.sh), not npm test's trimmed one: a scenario may check more, at more cost. */
  readonly full: boolean;
  /** A container name unique to the scenario and runtime; removed, if still there, when the scenario ends. */
  name(part?: string): string;
  /** Set by a scenario that passed with a reservation (a part the client cannot express). */
  note?: string;
}
