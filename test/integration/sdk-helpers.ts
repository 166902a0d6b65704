// What the SDK's tests share: an image of their own (busybox-static, every applet), and the look for what a sandbox left.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listMountsUnder } from '../helpers/cleanup';
import { runProcesses } from '../helpers/run-scope';
import { busyboxPath } from '../helpers/rootfs';
import { layerTar, ociLayout, type Entry } from '../unit/image/build';

/** A directory of the test's own: the state root is `state` in it. */
export function sdkDir(): { dir: string; root: string } {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-sdk-'));
  return { dir, root: join(dir, 'state') };
}

/**
 * An OCI layout of one image: busybox with every applet it has in /bin, an Env, a WorkingDir
 * that the image lacks (made, as Docker does), and a user of its own for the files test.
 */
export async function sdkImage(dir: string): Promise<string> {
  const applets = execFileSync(busyboxPath(), ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => /^[\w.[-]+$/.test(a) && a !== 'busybox');
  const entries: Entry[] = [
    { name: 'bin/', type: 'directory' },
    { name: 'bin/busybox', body: readFileSync(busyboxPath()), mode: 0o755 },
    ...applets.map((a): Entry => ({ name: `bin/${a}`, type: 'symlink', linkname: '/bin/busybox' })),
    { name: 'etc/', type: 'directory' },
    { name: 'etc/passwd', body: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' },
    { name: 'etc/group', body: 'root:x:0:\nnogroup:x:65534:\n' },
    { name: 'tmp/', type: 'directory', mode: 0o1777 },
    { name: 'root/', type: 'directory', mode: 0o700 },
  ];
  const layout = ociLayout(join(dir, 'image'), {
    layers: [{ data: await layerTar(entries), gzip: true }],
    config: { Env: ['PATH=/bin', 'GREETING=from-image'], Cmd: ['sh'], WorkingDir: '/work' },
  });
  return `oci:${layout.dir}:latest`;
}

/** The cgroup directories the container of `id` was given, read while it exists. */
export function cgroupsOf(root: string, id: string): string[] {
  return (JSON.parse(readFileSync(join(root, id, 'state.json'), 'utf8')) as { cgroupPaths?: string[] }).cgroupPaths ?? [];
}

/**
 * What sandboxes left under `root` and on the host: a state directory, a mount, an image overlay
 * or in-use mark, one of the given cgroups, a process of this test run (in its cgroup or with its
 * tag: the containers' inits, the sentries, VM keepers and helpers all are), but for those
 * `shared` names, which outlive any one container by design (a vm template's holder).
 */
export function leftBehind(root: string, cgroups: readonly string[] = [], shared: RegExp | undefined = undefined): string[] {
  const found: string[] = [];
  if (existsSync(root)) for (const d of readdirSync(root)) if (!d.startsWith('.')) found.push(`state dir ${d}`);
  for (const m of listMountsUnder(root)) found.push(`mount ${m.mountpoint}`);
  for (const sub of ['run', 'in-use']) {
    const d = join(root, '.images', sub);
    if (existsSync(d)) for (const f of readdirSync(d)) found.push(`image ${sub}/${f}`);
  }
  for (const c of cgroups) if (existsSync(c)) found.push(`cgroup ${c}`);
  for (const p of runProcesses('')) if (shared === undefined || !shared.test(p.cmdline)) found.push(`process ${p.pid} ${p.cmdline}`);
  return found;
}

/** Waits for leftBehind to find nothing, else fails naming what is there. */
export async function nothingLeft(root: string, cgroups: readonly string[] = [], ms = 5000, shared: RegExp | undefined = undefined): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const left = leftBehind(root, cgroups, shared);
    if (left.length === 0) return;
    if (Date.now() > end) throw new Error(`left behind: ${left.join('; ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function mkdirp(p: string): string {
  mkdirSync(p, { recursive: true });
  return p;
}
