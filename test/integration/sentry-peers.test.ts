// Programs no one here wrote, under the sentry against the namespaces level (issue 15, item 4): a web server and its client in two sandboxes, and a JVM sizing itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, integrationSkip, leftovers, waitFor, has } from './harness';

const skip = integrationSkip();

describe('programs no one here wrote, under the sentry and under namespaces', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  test('python3\'s http.server in one sandbox, curl in another: the allowed port answers as under namespaces, another is refused', {
    skip: !has('python3') ? 'python3 is not installed' : !has('curl') ? 'curl is not installed' : undefined,
  }, async () => {
    // The server's sandbox has the host's network (policy all); it serves /etc on a port of its choosing.
    const server = rt.spawn(['do', '--isolation', 'sentry', '--network', 'host', '--cwd', '/', '--',
      'python3', '-u', '-m', 'http.server', '--bind', '127.0.0.1', '--directory', '/etc', '0']);
    let out = '';
    server.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    server.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    try {
      await waitFor(() => /port (\d+)/.test(out), 20000);
      const port = Number(/port (\d+)/.exec(out)![1]);
      const url = `http://127.0.0.1:${port}/os-release`;
      const host = readFileSync('/etc/os-release', 'utf8');
      const allowed = rt.run(['do', '--allow-net', `127.0.0.1:${port}`, '--cwd', '/', '--', 'curl', '-sS', url]);
      assert.equal(allowed.status, 0, allowed.stderr);
      assert.equal(allowed.stdout, host);
      const plain = rt.run(['do', '--isolation', 'namespaces', '--network', 'host', '--cwd', '/', '--', 'curl', '-sS', url]);
      assert.equal(plain.status, 0, plain.stderr);
      assert.equal(plain.stdout, allowed.stdout);
      // The server listens there, but the policy names another port: the sentry refuses the connect.
      const refused = rt.run(['do', '--allow-net', `127.0.0.1:${port === 65535 ? port - 1 : port + 1}`, '--cwd', '/', '--', 'curl', '-sS', url]);
      assert.equal(refused.status, 7, `curl's "could not connect": ${refused.stderr}`);
      // Refused by the sentry (EPERM, which curl does not print), not by the server.
      assert.ok(rt.logLines().some((l) => l.level === 'warning' && l.msg.includes(`denied connect to 127.0.0.1:${port}`)),
        `the refusal is in the --log file: ${JSON.stringify(rt.logLines())}`);
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
    assert.deepEqual(leftovers(rt), []);
  });

  test('a Java program sizes its heap from the memory limit the sentry reports, and counts the CPUs as under namespaces', {
    skip: has('javac') ? undefined : 'javac is not installed',
  }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'stockade-java-'));
    try {
      chmodSync(dir, 0o755);
      writeFileSync(join(dir, 'Size.java'), 'public class Size { public static void main(String[] a) { Runtime r = Runtime.getRuntime(); '
        + 'System.out.println(r.availableProcessors() + " " + (r.maxMemory() >> 20)); } }\n', { mode: 0o644 });
      const limitMb = 512;
      const at = (level: string): [number, number] => {
        const r = rt.run(['do', '--isolation', level, '--memory', `${limitMb}m`, '--bind', dir, '--cwd', dir, '--', 'java', 'Size.java'], { timeout: 120000 });
        assert.equal(r.status, 0, `${level}: ${r.stderr}`);
        const [cpus, heap] = r.stdout.trim().split(' ').map(Number);
        return [cpus ?? NaN, heap ?? NaN];
      };
      const [sentryCpus, sentryHeap] = at('sentry');
      const [plainCpus] = at('namespaces');
      assert.equal(sentryCpus, plainCpus);
      // The JVM's default heap is a quarter of the memory it finds: the limit's under the sentry
      // (/proc/meminfo and sysinfo say the limit), where under namespaces it finds the host's
      // memory unless it reads the container's cgroup.
      assert.ok(sentryHeap > 0 && sentryHeap <= limitMb / 4, `heap ${sentryHeap} MB for a ${limitMb} MB limit`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(leftovers(rt), []);
  });
});
