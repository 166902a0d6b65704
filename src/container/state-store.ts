// The state directory: one folder per container holding state.json, the start socket and the root mountpoint.
// fs.promises is read where it is used: loading node:fs/promises (and the readline internals it
// brings) cost every CLI call some milliseconds at start, for a delete only the SDK makes.
import { chmodSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, promises as fsp, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StockadeError, errnoCode } from '../errors';
import { flockAsync, flockSync } from '../native/addon';
import type { Spec } from '../oci/spec';
import type { ContainerId } from './id';
import { detachMountsBelow } from './mounts-below';

/** The state root without --root; the C entry's too (STK_DEFAULT_ROOT in the generated header). */
export const DEFAULT_ROOT = '/run/stockade';

/** The start socket's name in a container's directory: there while the container is created, not started. */
export const START_SOCKET = 'start.sock';

/** What stockade records about a container; `status` is derived live, never trusted from disk alone. */
export interface ContainerRecord {
  ociVersion: string;
  id: string;
  /** Host pid of the container's init; 0 while creating. */
  pid: number;
  /** Field 22 of /proc/PID/stat, so a reused pid is not taken for the container. */
  pidStartTime: string;
  /** The inode of its mount namespace once created (start times are only 10 ms apart); absent in older records. */
  pidMntNs?: string;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations: Record<string, string>;
  /** The level the container runs at: the name of its driver in the registry (src/levels/). */
  level: string;
  /** The driver's own data (Workload.data at create), JSON; only that driver reads it. */
  levelData?: unknown;
  /** The level, as records written before `level` named it; read() turns it into `level`. */
  isolation?: string | undefined;
  /** True when the container has its own pid namespace: killing its init kills everything in it. */
  ownPidNamespace: boolean;
  /** Set once creation completed; a record without it belongs to a create in progress or one that died. */
  createdOk: boolean;
  /** Cgroup directories (host paths) the container was placed in; empty when none were made. */
  cgroupPaths: string[];
  /** False when the container shares the runtime's mount namespace (none in linux.namespaces): its mounts stay on the host until delete. */
  ownMountNamespace?: boolean | undefined;
  /** Records older than levelData: the process serving the container's calls (now the sentry's levelData). */
  supervisor?: { pid: number; startTime: string } | undefined;
  /** The process that owns the container's lifetime (`stockade do`); once it is gone, so is the
   *  container, and the next call deletes what is left (do-sweep.ts). */
  heldBy?: { pid: number; startTime: string } | undefined;
}

export class ContainerLock {
  #fd: number;
  constructor(fd: number) { this.#fd = fd; }
  release(): void {
    if (this.#fd >= 0) { closeSync(this.#fd); this.#fd = -1; }
  }
}

export class StateStore {
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }

  dir(id: ContainerId): string { return join(this.root, id); }
  startSocket(id: ContainerId): string { return join(this.root, id, START_SOCKET); }
  rootfsMountpoint(id: ContainerId): string { return join(this.root, id, 'rootfs'); }

  /** 0700: the state root is root's alone (a container in a user namespace adds search, see createLocked). */
  ensureRoot(): void {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
  }

  /**
   * Creates the container's directory exclusively and locks it: the id is taken atomically. 0700;
   * `traversable`: 0711, and search added to the root, since a container's root in a user
   * namespace is no root of the host's and must still reach its rootfs mountpoint below both.
   * Nothing in either is readable but by root: files 0600, sockets root's.
   */
  createLocked(id: ContainerId, traversable = false): ContainerLock {
    this.ensureRoot();
    if (traversable) {
      const mode = statSync(this.root).mode & 0o7777;
      if ((mode & 0o011) !== 0o011) chmodSync(this.root, mode | 0o011);
    }
    try {
      mkdirSync(this.dir(id), { mode: traversable ? 0o711 : 0o700 });
    } catch (e) {
      if (errnoCode(e) === 'EEXIST') throw new StockadeError('CONTAINER_EXISTS', `container with id ${id} already exists`, { id });
      if (errnoCode(e) === 'ENAMETOOLONG') {
        throw new StockadeError('CONTAINER_ID_INVALID', `container id ${JSON.stringify(id)} is too long for the state directory ${this.root}`, { id, root: this.root });
      }
      throw e;
    }
    let fd = -1;
    try {
      fd = openSync(this.dir(id), 'r');
      flockSync(fd, 'ex', true);
    } catch (e) {
      // The id must not stay taken by an empty directory nobody can lock.
      if (fd >= 0) closeSync(fd);
      rmSync(this.dir(id), { recursive: true, force: true });
      throw e;
    }
    return new ContainerLock(fd);
  }

  /** Waits for the container's lock; fails if the container vanished while waiting. */
  async lock(id: ContainerId): Promise<ContainerLock> {
    let fd: number;
    try {
      fd = openSync(this.dir(id), 'r');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw notFound(id);
      throw e;
    }
    try {
      await flockAsync(fd, 'ex');
      // A delete may have removed the directory while we waited for it.
      const now = statSync(this.dir(id), { throwIfNoEntry: false });
      const held = fstatSync(fd);
      if (now === undefined || now.ino !== held.ino) throw notFound(id);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return new ContainerLock(fd);
  }

  read(id: ContainerId): ContainerRecord {
    let text: string;
    try {
      text = readFileSync(join(this.dir(id), 'state.json'), 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') throw notFound(id);
      throw e;
    }
    const record = JSON.parse(text) as ContainerRecord;
    // A record from before `level` names its level in `isolation`.
    if (typeof record.level !== 'string' && typeof record.isolation === 'string') record.level = record.isolation;
    return record;
  }

  /**
   * Atomic: a reader sees the old record or the new one, never half of one. No fsync: the state
   * lives on a tmpfs (/run) and describes processes that do not survive a reboot anyway.
   */
  write(id: ContainerId, record: ContainerRecord): void {
    const path = join(this.dir(id), 'state.json');
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(record), { mode: 0o600 });
    renameSync(tmp, path);
  }

  /** The config the container was created with: exec, update and hooks read it later. */
  writeConfig(id: ContainerId, spec: Spec): void {
    writeFileSync(join(this.dir(id), 'config.json'), JSON.stringify(spec), { mode: 0o600 });
  }

  readConfig(id: ContainerId): Spec {
    try {
      return JSON.parse(readFileSync(join(this.dir(id), 'config.json'), 'utf8')) as Spec;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw notFound(id);
      throw e;
    }
  }

  /** Removes the container's directory; anything still mounted below it (a container that shares the runtime's mount namespace) is detached first, never walked into. */
  remove(id: ContainerId): void {
    detachMountsBelow(this.dir(id));
    rmSync(this.dir(id), { recursive: true, force: true });
  }

  /** remove with the directory's files unlinked off the event loop (delete: the SDK's dispose does other work meanwhile). */
  async removeAsync(id: ContainerId): Promise<void> {
    detachMountsBelow(this.dir(id));
    await fsp.rm(this.dir(id), { recursive: true, force: true });
  }

  list(): ContainerId[] {
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw e;
    }
    return names.filter((n) => existsSync(join(this.root, n, 'state.json'))).sort() as ContainerId[];
  }
}

function notFound(id: string): StockadeError {
  return new StockadeError('CONTAINER_NOT_FOUND', `container ${id} does not exist`, { id });
}

export { writeFileAtomic } from './atomic-file';
