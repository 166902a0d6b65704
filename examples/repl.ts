// A long-running process with a stdin of its own: spawn a shell, talk to it line by line, read its answers as they come.
// From the checkout, as root: npx tsc -p examples && node examples/dist/repl.js
import { Sandbox } from 'stockade';

async function main(): Promise<void> {
  await using sb = await Sandbox.create({ hostRoot: true });
  const sh = await sb.spawn(['sh']);
  const answers = sh.stdout[Symbol.asyncIterator]();
  for (const line of ['echo $((6 * 7))', 'uname -s', 'cd /tmp && pwd']) {
    sh.stdin.write(`${line}\n`);
    console.log(`${line} -> ${String((await answers.next()).value).trim()}`);
  }
  sh.stdin.end('exit 3\n');
  console.log('shell exited with', (await sh.wait()).exitCode);
}

void main();
