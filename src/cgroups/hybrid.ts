// The hybrid manager: v1 hierarchies for the controllers mounted there, the unified hierarchy for the rest.
//
// A hybrid host (systemd's "hybrid" mode, or this kind of machine: v1 controllers under
// /sys/fs/cgroup/<name> and a cgroup2 mount at /sys/fs/cgroup/unified) splits controllers between
// the two trees: a controller is bound to at most one. The container joins both trees, as runc
// does; each part of linux.resources goes to the tree that holds its controller (hugetlb, for
// one, may only exist on the v2 side), and `unified` keys are accepted for v2-side controllers only.
import { StockadeError } from '../errors';
import type { Resources } from '../oci/spec';
import type { CgroupManager, FreezerState, Warn } from './manager';
import { pickSections, sectionsOf, V2_CONTROLLER, type Section } from './resources';
import type { Stats } from './stats';
import type { V1Manager } from './v1';
import type { V2Manager } from './v2';

export class HybridManager implements CgroupManager {
  readonly mode = 'hybrid' as const;
  readonly v1: V1Manager;
  readonly v2: V2Manager;
  /** Controllers the unified mount offers that no v1 hierarchy holds. */
  readonly #v2Controllers: readonly string[];

  constructor(v1: V1Manager, v2: V2Manager, unifiedControllers: readonly string[]) {
    this.v1 = v1;
    this.v2 = v2;
    this.#v2Controllers = unifiedControllers.filter((c) => !v1.hasController(c === 'io' ? 'blkio' : c));
  }

  get paths(): readonly string[] { return [...this.v1.paths, ...this.v2.paths]; }
  get made(): readonly string[] { return [...this.v1.made, ...this.v2.made]; }

  /** Which tree enforces a section: v1 when it holds the controller, else v2 when it offers it, else v1 (which reports it missing). */
  route(section: Section): 'v1' | 'v2' {
    if (section === 'unified') return 'v2';
    if (this.v1.hasController(section)) return 'v1';
    const c = V2_CONTROLLER[section];
    return c !== undefined && this.#v2Controllers.includes(c) ? 'v2' : 'v1';
  }

  async create(resources: Resources, warn: Warn): Promise<void> {
    this.#checkUnified(resources);
    const { v1, v2 } = this.#split(resources);
    await this.v1.create(v1, warn);
    try {
      await this.v2.create(v2, warn);
    } catch (e) {
      await this.v1.undo().catch(() => undefined);
      throw e;
    }
  }

  apply(resources: Resources, warn: Warn): void {
    this.#checkUnified(resources);
    const { v1, v2 } = this.#split(resources);
    this.v1.apply(v1, warn);
    this.v2.apply(v2, warn);
  }

  #split(r: Resources): { v1: Resources; v2: Resources } {
    const sections = sectionsOf(r);
    return {
      v1: pickSections(r, sections.filter((s) => this.route(s) === 'v1')),
      v2: pickSections(r, sections.filter((s) => this.route(s) === 'v2')),
    };
  }

  #checkUnified(r: Resources): void {
    for (const key of Object.keys(r.unified ?? {})) {
      const controller = key.slice(0, Math.max(0, key.indexOf('.')));
      if (controller !== 'cgroup' && !this.#v2Controllers.includes(controller)) {
        const field = `linux.resources.unified[${JSON.stringify(key)}]`;
        throw new StockadeError('CGROUP_FAILED', `${field}: the ${controller || key} controller is not on the cgroup v2 side of this hybrid host (only ${this.#v2Controllers.join(', ') || 'none'})`, { field });
      }
    }
  }

  async freeze(timeoutMs?: number): Promise<void> {
    if (this.v1.hasController('freezer')) return this.v1.freeze(timeoutMs);
    return this.v2.freeze(timeoutMs);
  }

  thaw(): void {
    if (this.v1.hasController('freezer')) this.v1.thaw();
    else this.v2.thaw();
  }

  freezerState(): FreezerState | undefined {
    return this.v1.hasController('freezer') ? this.v1.freezerState() : this.v2.freezerState();
  }

  stats(): Stats {
    const s = this.v1.stats();
    if (this.route('hugetlb') === 'v2') s.hugetlb = this.v2.stats().hugetlb;
    return s;
  }

  oomKills(): bigint {
    return this.v1.hasController('memory') ? this.v1.oomKills() : this.v2.oomKills();
  }

  pids(): number[] {
    return [...new Set([...this.v1.pids(), ...this.v2.pids()])];
  }

  async destroy(): Promise<void> {
    await both([this.v1.destroy(), this.v2.destroy()]);
  }

  async undo(): Promise<void> {
    await both([this.v1.undo(), this.v2.undo()]);
  }
}

async function both(ops: Promise<void>[]): Promise<void> {
  const problems = (await Promise.allSettled(ops)).filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as Error).message);
  if (problems.length > 0) throw new StockadeError('CGROUP_FAILED', problems.join('; '), {});
}
