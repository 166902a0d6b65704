// create + exec `true` + dispose through the SDK, per level, beside `runc run` of `true` in a bundle of
// the same image's files; runs alternate so the machine's load falls on both alike. Prints medians and ratios.
// Usage (root): node dist-test/bench/sdk.js RUNS VM_RUNS   (bench/sdk.sh builds and calls it)
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox, type Isolation } from '../src/sdk';
import { sdkImage } from '../test/integration/sdk-helpers';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 20);
  const vmRuns = Number(process.argv[3] ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'stockade-bench-sdk-'));
  try {
    const image = await sdkImage(dir);
    const root = join(dir, 'state');
    // runc's bundle: the image's one layer, unpacked, and `runc spec` with `true` for args.
    const bundle = join(dir, 'bundle');
    mkdirSync(join(bundle, 'rootfs'), { recursive: true });
    const layout = image.replace(/^oci:/, '').replace(/:latest$/, '');
    const unpack = spawnSync('umoci', ['raw', 'unpack', '--image', `${layout}:latest`, join(bundle, 'rootfs')], { encoding: 'utf8' });
    if (unpack.status !== 0) throw new Error(`umoci raw unpack: ${unpack.stderr}`);
    const spec = spawnSync('runc', ['spec', '--bundle', bundle], { encoding: 'utf8' });
    if (spec.status !== 0) throw new Error(`runc spec: ${spec.stderr}`);
    const cfgPath = join(bundle, 'config.json');
    const cfg = JSON.parse(require('node:fs').readFileSync(cfgPath, 'utf8')) as { process: { args: string[]; terminal: boolean } };
    cfg.process.args = ['true'];
    cfg.process.terminal = false;
    writeFileSync(cfgPath, JSON.stringify(cfg));
    const runcRoot = join(dir, 'runc');
    let n = 0;
    const runc = (): number => {
      const t0 = performance.now();
      const r = spawnSync('runc', ['--root', runcRoot, 'run', '--bundle', bundle, `b${process.pid}-${n++}`], { stdio: 'ignore' });
      if (r.status !== 0) throw new Error(`runc run exited ${r.status}`);
      return performance.now() - t0;
    };
    const sdk = async (isolation: Isolation): Promise<number> => {
      const t0 = performance.now();
      const sb = await Sandbox.create({ image, isolation, root });
      const r = await sb.exec(['true']);
      await sb.kill();
      if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode} at ${isolation}`);
      return performance.now() - t0;
    };
    // Warm: the image pulled into the store, the caches of both filled.
    await sdk('namespaces');
    runc();
    const levels: [Isolation, number][] = [['namespaces', runs], ['sentry', runs], ['vm', vmRuns]];
    for (const [isolation, count] of levels) {
      const mine: number[] = [];
      const theirs: number[] = [];
      for (let i = 0; i < count; i++) {
        mine.push(await sdk(isolation));
        theirs.push(runc());
      }
      const m = median(mine);
      const r = median(theirs);
      console.log(`${isolation.padEnd(10)} SDK create+exec true+dispose: ${m.toFixed(0)} ms median of ${count}; runc run true: ${r.toFixed(0)} ms; ratio SDK/runc = ${(m / r).toFixed(2)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench/sdk: ${(e as Error).message}`);
  process.exit(1);
});
