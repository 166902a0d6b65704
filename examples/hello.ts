// A sandbox of the host's root, a command in it, its output read, and nothing left: five lines.
// From the checkout, as root: npx tsc -p examples && node examples/dist/hello.js [namespaces|sentry|vm]
import { Sandbox, type Isolation } from 'stockade';

async function main(isolation: Isolation): Promise<void> {
  await using sb = await Sandbox.create({ hostRoot: true, isolation });
  const { exitCode, stdout } = await sb.exec('echo "hello from $(hostname), uid $(id -u)"');
  console.log(exitCode, stdout.trim());
}

void main((process.argv[2] ?? 'namespaces') as Isolation);
