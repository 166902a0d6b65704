// Running code you did not write: an image, limits, no network, a file in, a deadline, output as it comes.
// From the checkout, as root: npx tsc -p examples && node examples/dist/run-untrusted.js IMAGE [namespaces|sentry|vm]
// IMAGE as `stockade pull` takes it: oci:DIR[:TAG], docker-archive:FILE, docker.io/library/busybox:latest, ...
import { Sandbox, SandboxOutOfMemoryError, SandboxTimeoutError, type Isolation } from 'stockade';

async function main(image: string, isolation: Isolation): Promise<void> {
  await using sb = await Sandbox.create({ image, isolation, memoryMb: 128, pids: 64, cpus: 0.5, network: 'none' });
  // The "submission": written into the sandbox, run there with a deadline.
  await sb.files.write('/work/submission.sh', 'for i in 1 2 3; do echo "step $i"; sleep 0.2; done\necho done >&2\n');
  const r = await sb.exec(['sh', '/work/submission.sh'], {
    timeoutMs: 5000,
    onStdout: (text) => process.stdout.write(`[live] ${text}`),
  });
  console.log(`exit ${r.exitCode}; stderr: ${r.stderr.trim()}`);
  try {
    await sb.exec('while :; do :; done', { timeoutMs: 500 });
  } catch (e) {
    if (e instanceof SandboxTimeoutError) console.log(`a busy loop: ${e.message}`);
    else throw e;
  }
  try {
    await sb.exec('x=0123456789abcdef; while :; do x="$x$x"; done');
  } catch (e) {
    if (e instanceof SandboxOutOfMemoryError) console.log(`a memory hog: ${e.message}`);
    else throw e;
  }
  console.log((await sb.files.list('/work')).map((f) => `${f.type} ${f.name}`).join('\n'));
}

const [image, isolation] = process.argv.slice(2);
if (image === undefined) {
  console.error('usage: node examples/dist/run-untrusted.js IMAGE [namespaces|sentry|vm]');
  process.exit(2);
}
main(image, (isolation ?? 'namespaces') as Isolation).catch((e: unknown) => {
  console.error(String(e));
  process.exit(1);
});
