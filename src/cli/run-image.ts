// stockade run --image REF [--env K=V]... [--platform P] [ID] [-- CMD...]: a container from an image.
//
// The image is pulled if the store lacks it; the container's root is an overlay of the image's
// snapshots with an upper dir of its own, and all of it (bundle, upper dir, mount) goes with the
// container when it exits. The image's Entrypoint, Cmd, Env, WorkingDir and User are applied as
// Docker applies them; no_new_privs is set, so setuid files in the image raise nothing.
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseContainerId } from '../container/id';
import { tellIdTaken } from '../container/create';
import { runContainer } from '../container/run';
import { StockadeError } from '../errors';
import { parsePlatform } from '../image/manifest';
import { mountImageRootfs, removeImageRootfs } from '../image/overlay';
import { loadImage, pullImage } from '../image/pull';
import { ensureWorkingDir, imageProcess } from '../image/runtime-config';
import { ImageStore } from '../image/store';
import { defaultSpec } from '../oci/default-spec';
import { list, parseArgs, str } from './args';
import type { Command } from './context';
import { maxLayerSize, registryOptions } from './pull';

export const command: Command = {
  summary: 'run a container from an image',
  usage: 'stockade run --image REF [--env KEY=VALUE]... [--platform OS/ARCH] [--creds USER:PASSWORD] [--plain-http] [--max-layer-size BYTES] [ID] [-- CMD [ARG...]]',
  async run(argv, ctx) {
    // Split at the first "--" here: the id and the command are both positional.
    const dash = argv.indexOf('--');
    const own = dash < 0 ? argv : argv.slice(0, dash);
    const cmd = dash < 0 ? undefined : argv.slice(dash + 1);
    const p = parseArgs(own, [
      { name: 'image', type: 'string' }, { name: 'env', type: 'list', short: 'e' }, { name: 'platform', type: 'string' },
      { name: 'max-layer-size', type: 'string' }, { name: 'creds', type: 'string' }, { name: 'plain-http', type: 'bool' },
    ], 'run --image');
    const ref = str(p, 'image');
    if (ref === undefined || ref === '') throw new StockadeError('USAGE', 'run: --image needs a reference');
    if (p.positional.length > 1) throw new StockadeError('USAGE', `run --image: expects at most one container id before --, got ${p.positional.length}`);
    const id = parseContainerId(p.positional[0] ?? `image-${randomBytes(6).toString('hex')}`);
    const platform = str(p, 'platform');
    const max = maxLayerSize(str(p, 'max-layer-size'));
    const store = new ImageStore(ctx.store.root);
    const image = loadImage(store, ref) ?? await pullImage(store, ref, {
      registry: registryOptions(p),
      ...(platform !== undefined ? { platform: parsePlatform(platform) } : {}),
      ...(max !== undefined ? { limits: { maxLayerBytes: max } } : {}),
      warn: (m) => ctx.log.warn(m),
      debug: (m) => ctx.log.debug(m),
    });
    if (existsSync(ctx.store.dir(id))) throw new StockadeError('CONTAINER_EXISTS', `container with id ${id} already exists`, { id });
    const { bundle, rootfs } = mountImageRootfs(store, id, image.record.diffIds);
    // Were the planner serving this call lost from here on, the cold retry removes this overlay
    // with the container, before it mounts its own under the same id (planner-lost.ts).
    tellIdTaken(ctx.store, id);
    try {
      const proc = imageProcess(image.config, rootfs, { cmd, env: list(p, 'env') });
      ensureWorkingDir(rootfs, proc.cwd);
      const spec = defaultSpec();
      spec.root = { path: rootfs, readonly: false };
      spec.hostname = id.slice(0, 63);
      spec.process = { ...spec.process, terminal: false, args: proc.args, env: proc.env, cwd: proc.cwd, user: proc.user, noNewPrivileges: true };
      writeFileSync(join(bundle, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`, { mode: 0o600 });
      return await runContainer({
        store: ctx.store,
        id,
        bundle,
        spec,
        detach: false,
        keep: false,
        debug: (m) => ctx.log.debug(m),
        warn: (m) => ctx.log.warn(m),
        levels: ctx.levels,
      });
    } finally {
      // The overlay is the container's while the container is: a run that ends with its container
      // still there (its planner lost the front that was the workload's parent, as a cold run killed
      // outright does) leaves it for the next pull or rmi after the delete, not unmounted under it.
      if (!existsSync(ctx.store.dir(id))) removeImageRootfs(store, id);
    }
  },
};
