// The cgroup manager interface every layout implements, and the choice of implementation.
import type { Resources } from '../oci/spec';
import type { Mode } from './layout';
import type { Stats } from './stats';

export type FreezerState = 'thawed' | 'freezing' | 'frozen';

/** Where a setting the host accepts but cannot enforce, or ignores, is reported. */
export type Warn = (message: string) => void;

export interface CgroupManager {
  readonly mode: Mode;
  /** Every directory a container process joins, in the order it joins them. */
  readonly paths: readonly string[];
  /** Directories create() made, outermost first: what a failed create removes. */
  readonly made: readonly string[];
  /** Makes the directories and applies the resources; on failure removes what it made and throws. */
  create(resources: Resources, warn: Warn): Promise<void>;
  /** Applies resources to existing directories (update). */
  apply(resources: Resources, warn: Warn): void;
  /** Freezes every process, returning once the kernel reports them frozen. */
  freeze(timeoutMs?: number): Promise<void>;
  thaw(): void;
  /** undefined when no freezer is available. */
  freezerState(): FreezerState | undefined;
  stats(): Stats;
  /** How many processes the OOM killer has killed in the container so far. */
  oomKills(): bigint;
  /** Host pids of every process in the container's cgroups, nested ones included. */
  pids(): number[];
  /** Removes the container's directories (its leaves, and any parents create() made). */
  destroy(): Promise<void>;
  /** Removes only what create() made in this process: a failed create must not take a cgroup it merely joined. */
  undo(): Promise<void>;
}
