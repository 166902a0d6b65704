// Sandbox.create's options checked, and the container they describe: its config, its root, the environment of its commands.
import { realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SandboxOptions as LevelSandboxOptions } from '../container/level';
import { NETWORK_ANNOTATION } from '../container/level';
import { checkHiddenChoice, existingHidden, homeDirectories, maskedForDo } from '../container/do-hidden';
import { doIdentity } from '../container/do-identity';
import { DO_DEFAULT_LIMITS, DO_FRESH, DO_MIN_MEMORY, doSpec, doTmpfsSizes, type DoLimits } from '../container/do-spec';
import type { PlanOptions } from '../container/plan';
import { mountImageRootfs, removeImageRootfs, removeImageRootfsAsync } from '../image/overlay';
import { loadImage, pullImage } from '../image/pull';
import { ensureWorkingDir, imageProcess } from '../image/runtime-config';
import type { ImageStore } from '../image/store';
import { defaultSpec } from '../oci/default-spec';
import type { Spec } from '../oci/spec';
import { defaultSeccompProfile } from '../seccomp';
import { parseNetPolicy } from '../sentry/net-policy';
import { SandboxOptionsError } from './errors';
import type { Isolation, SandboxOptions } from './types';

/** What the held container's process.args say: never executed (TAG_HOLD), only shown by `stockade list`/`ps` tools. */
export const HOLD_ARGS = ['stockade-sandbox'];

const LEVELS: readonly Isolation[] = ['namespaces', 'sentry', 'vm'];
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** The options, checked: each wrong one named in a one-line error before anything is made. */
export interface Checked {
  readonly source: { kind: 'image'; ref: string } | { kind: 'host' };
  readonly isolation: Isolation;
  readonly limits: DoLimits;
  /** The sentry's network policy (--allow-net's form); undefined: no network but loopback. */
  readonly policy: string | undefined;
  readonly env: readonly string[];
  readonly timeoutMs: number | undefined;
}

function positive(name: string, v: unknown, min: number, max: number, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new SandboxOptionsError(name, `must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}, not ${JSON.stringify(v)}`);
  }
  return v;
}

export function checkOptions(o: SandboxOptions): Checked {
  if (typeof o !== 'object' || o === null) throw new SandboxOptionsError('options', 'Sandbox.create takes an object ({ image } or { hostRoot: true })');
  const hasImage = o.image !== undefined;
  if (hasImage === (o.hostRoot === true)) throw new SandboxOptionsError('image', 'give exactly one of image (a reference) and hostRoot: true');
  if (o.hostRoot !== undefined && o.hostRoot !== true) throw new SandboxOptionsError('hostRoot', `must be true when given, not ${JSON.stringify(o.hostRoot)}`);
  if (hasImage && (typeof o.image !== 'string' || o.image === '')) throw new SandboxOptionsError('image', 'must be a non-empty image reference');
  const network = o.network ?? 'none';
  let policy: string | undefined;
  if (network !== 'none') {
    const allow = typeof network === 'object' && network !== null ? network.allow : undefined;
    if (!Array.isArray(allow) || allow.length === 0 || allow.some((a) => typeof a !== 'string' || a === '')) {
      throw new SandboxOptionsError('network', "must be 'none' or { allow: [destinations] } with at least one destination");
    }
    policy = allow.flatMap((d) => d.split(',')).filter((d) => d !== '').join(',');
    try {
      parseNetPolicy(policy, 'network.allow');
    } catch (e) {
      throw new SandboxOptionsError('network.allow', (e as Error).message.replace(/^network\.allow:?\s*/, ''));
    }
  }
  const isolation = o.isolation ?? (policy !== undefined ? 'sentry' : 'namespaces');
  if (!LEVELS.includes(isolation)) throw new SandboxOptionsError('isolation', `must be namespaces, sentry or vm, not ${JSON.stringify(isolation)}`);
  if (policy !== undefined && isolation !== 'sentry') throw new SandboxOptionsError('network', `an allow list needs isolation sentry (the ${isolation} level keeps no network policy)`);
  const memoryMb = positive('memoryMb', o.memoryMb, DO_MIN_MEMORY / 1024 ** 2, 1024 ** 2, true);
  const pids = positive('pids', o.pids, 1, 4_194_304, true);
  const cpus = positive('cpus', o.cpus, 0.01, 1024, false);
  const timeoutMs = positive('timeoutMs', o.timeoutMs, 1, 0x7fffffff, true);
  const env: string[] = [];
  for (const [k, v] of Object.entries(o.env ?? {})) {
    if (!ENV_KEY.test(k)) throw new SandboxOptionsError('env', `${JSON.stringify(k)} is not a variable name`);
    if (typeof v !== 'string') throw new SandboxOptionsError(`env.${k}`, 'must be a string');
    env.push(`${k}=${v}`);
  }
  return {
    source: hasImage ? { kind: 'image', ref: o.image as string } : { kind: 'host' },
    isolation,
    limits: {
      memory: memoryMb === undefined ? DO_DEFAULT_LIMITS.memory : memoryMb * 1024 ** 2,
      pids: pids ?? DO_DEFAULT_LIMITS.pids,
      ...(cpus === undefined ? {} : { cpus }),
    },
    policy,
    env,
    timeoutMs,
  };
}

/** The container a sandbox is: its config, bundle and root mode, and what undoes what was made for it. */
export interface SandboxContainer {
  readonly spec: Spec;
  readonly bundle: string;
  readonly rootfsMode: PlanOptions['rootfsMode'];
  readonly sandbox: LevelSandboxOptions;
  /** The root whose /etc/passwd and /etc/group name exec's users (the image's); undefined: no user but the sandbox's own (hostRoot). */
  readonly userDb: string | undefined;
  /** Removes what was made outside the container's own state (an image's overlay); safe twice. */
  readonly cleanup: () => void;
  /** cleanup, its directories removed off the event loop (dispose runs it beside the container's delete). */
  readonly cleanupAsync: () => Promise<void>;
}

export interface ImageDeps {
  readonly store: ImageStore;
  readonly registry: SandboxOptions['registry'];
  readonly warn: (m: string) => void;
  readonly debug: (m: string) => void;
}

/** The resources every sandbox is bounded by, as `do` bounds its command. */
function resources(limits: DoLimits): NonNullable<NonNullable<Spec['linux']>['resources']> {
  const period = 100_000;
  return {
    memory: { limit: limits.memory },
    pids: { limit: limits.pids },
    ...(limits.cpus === undefined ? {} : { cpu: { quota: Math.max(1000, Math.round(limits.cpus * period)), period } }),
  };
}

/** A sandbox of an image: its layers under an overlay of its own, the image's config applied as `run --image` does. */
export async function imageContainer(id: string, c: Checked, deps: ImageDeps): Promise<SandboxContainer> {
  if (c.source.kind !== 'image') throw new Error('imageContainer: not an image sandbox');
  const registry = deps.registry === undefined ? undefined : {
    ...(deps.registry.creds !== undefined ? { creds: deps.registry.creds } : {}),
    plainHttp: deps.registry.plainHttp === true,
  };
  const image = loadImage(deps.store, c.source.ref) ?? await pullImage(deps.store, c.source.ref, {
    ...(registry !== undefined ? { registry } : {}), warn: deps.warn, debug: deps.debug,
  });
  const { bundle, rootfs } = mountImageRootfs(deps.store, id, image.record.diffIds);
  const cleanup = (): void => removeImageRootfs(deps.store, id);
  try {
    const proc = imageProcess(image.config, rootfs, { cmd: HOLD_ARGS, env: c.env });
    ensureWorkingDir(rootfs, proc.cwd);
    const spec = defaultSpec();
    spec.root = { path: rootfs, readonly: false };
    spec.hostname = 'sandbox';
    const caps = spec.process?.capabilities?.bounding ?? [];
    spec.process = { ...spec.process, terminal: false, args: proc.args, env: proc.env, cwd: proc.cwd, user: proc.user, noNewPrivileges: true };
    const linux = spec.linux ?? {};
    linux.resources = { ...linux.resources, ...resources(c.limits) };
    // Untrusted code: Docker's default profile, cut to the process's capabilities, as `do` has it.
    linux.seccomp = defaultSeccompProfile({ capabilities: caps });
    if (c.policy !== undefined) {
      // The allow list is kept by the sentry on the host's network (as do --allow-net).
      linux.namespaces = (linux.namespaces ?? []).filter((n) => n.type !== 'network');
      spec.annotations = { ...spec.annotations, [NETWORK_ANNOTATION]: c.policy };
    }
    spec.linux = linux;
    writeFileSync(join(bundle, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`, { mode: 0o600 });
    return {
      spec, bundle, rootfsMode: 'bind', sandbox: { init: true, hold: true, envOnDisk: false }, cleanup, userDb: rootfs,
      cleanupAsync: () => removeImageRootfsAsync(deps.store, id),
    };
  } catch (e) {
    cleanup();
    throw e;
  }
}

/** A sandbox of the host's root, read-only, as `stockade do` makes it (credentials hidden, the state root covered). */
export function hostContainer(stateRoot: string, c: Checked): SandboxContainer {
  const identity = doIdentity(undefined);
  const root = realpathSync(stateRoot);
  const homes = homeDirectories();
  const choice = checkHiddenChoice([], [], '/', homes, DO_FRESH);
  const masked = maskedForDo(existingHidden(homes), choice, [], [...DO_FRESH, root]);
  const env = [
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    `HOME=${identity.uid === 0 ? '/root' : '/'}`,
    ...c.env,
  ];
  const spec = doSpec({
    args: HOLD_ARGS, env, cwd: '/', network: c.policy !== undefined ? 'host' : 'none', rw: false,
    uid: identity.uid, gid: identity.gid, limits: c.limits, hidden: [root], binds: [], tmpfs: [], terminal: false, masked,
  });
  if (c.policy !== undefined) spec.annotations = { ...spec.annotations, [NETWORK_ANNOTATION]: c.policy };
  return {
    spec, bundle: '/', rootfsMode: 'recursive-readonly',
    sandbox: { init: true, hold: true, envOnDisk: false, overlayTmpfs: doTmpfsSizes(c.limits.memory).overlay },
    userDb: undefined,
    cleanup: () => undefined,
    cleanupAsync: () => Promise.resolve(),
  };
}
