// Two suites at once on one host: the test sources hold none of the patterns that made them collide (fixed network names and addresses, host-wide process looks, fixed host paths and cgroups).
//
// Each rule below was a collision seen with two CI runs on one machine: `ip netns add sn1234-ns`
// in both, a DNS server on 127.0.0.78:53 in both, a QEMU of the other run taken for a leftover,
// `sleep 41.11` of the other run taken for one's own, the host's whole mount count. The remedy
// each message names makes the name random, or the look this run's own (test/helpers/run-scope.ts,
// test/helpers/net-scope.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from '../../../src/native/paths';
import { tsSources } from './sources';

interface Rule {
  readonly name: string;
  readonly pattern: RegExp;
  /** Files (relative to test/; a directory ends in /) where the pattern is the helper that does it safely, or harmless. */
  readonly home: readonly string[];
  readonly remedy: string;
}

const RULES: readonly Rule[] = [
  {
    name: 'a network namespace or interface made by hand',
    pattern: /\bnetns\b['",\s]+add\b|\blink\b['",\s]+add\b|\btype\b['",\s]+veth\b/,
    home: ['helpers/net-scope.ts'],
    remedy: 'makeVethNetns() (test/helpers/net-scope.ts): random names within IFNAMSIZ, a subnet no interface holds',
  },
  {
    name: 'a fixed loopback address other than 127.0.0.1',
    pattern: /['"`]127\.(?!0\.0\.1['"`:])\d+\.\d+\.\d+/,
    // Unit tests judge addresses; they bind none.
    home: ['unit/'],
    remedy: 'randomLoopback() (test/helpers/net-scope.ts), or Peers.dns(), which draws its own',
  },
  {
    name: 'a fixed port to listen on',
    // Node's listen(PORT, HOST) and bind(PORT, HOST), and the peers' tcp(HOST, PORT) (a lone
    // number is python's backlog: s.listen(1)).
    pattern: /\.(?:listen|bind)\(\s*[1-9]\d*\s*,|\.(?:tcp|udp)\([^,()]+,\s*[1-9]/,
    // The DNS server: port 53 is the protocol's, and its address is drawn at random (Peers.dns).
    home: ['helpers/net-peers.ts'],
    remedy: 'listen on port 0 and use the port the kernel gave',
  },
  {
    name: 'a look at every process on the host',
    pattern: /readdirSync\(\s*['"`]\/proc['"`]\s*\)|\bprocessesWithCmdline\(|\b(?:pgrep|pkill|pidof|killall)\b|\bps\s+(?:-e|-A|aux)\b/,
    // cleanup.ts is the primitive, run-scope.ts scopes it; rootfs-helpers tests the primitive with a marker of its own;
    // vm-helpers keeps only the VM's keeper, its QEMU's drawn uid and processes naming its state directory.
    home: ['helpers/cleanup.ts', 'helpers/run-scope.ts', 'unit/native/rootfs-helpers.test.ts', 'integration/vm-helpers.ts'],
    remedy: 'runProcesses() (this run\'s cgroup or tag) or processesMarked() with a marker this run made (a mkdtemp directory, a drawn uid)',
  },
  {
    name: 'a cgroup path without the run\'s tag',
    pattern: /(?:cgroupsPath:|CGROUP_PARENT\s*=|['"`]--cgroup-parent['"`],)\s*['"`](?![^'"`]*\$\{RUN_(?:TAG|CGROUP)\})/,
    home: [],
    remedy: 'put ${RUN_TAG} in it (test/helpers/run-scope.ts), or leave it relative: relative cgroups go below the run\'s own',
  },
  {
    name: 'a fixed path in the host\'s /tmp, /var/tmp or /run',
    // The test's own calls (imported by name from node:fs); a program run inside a sandbox says
    // fs.writeFileSync, and its /tmp is the sandbox's.
    pattern: /(?<![.\w])(?:writeFileSync|mkdirSync|openSync|rmSync|existsSync|readFileSync|symlinkSync|copyFileSync|renameSync|unlinkSync)\(\s*(['"`])\/(?:tmp|var\/tmp|run)\/(?:(?!\1|\$\{).)*\1/,
    home: [],
    remedy: 'mkdtempSync(join(tmpdir(), PREFIX)): a directory of this run\'s own',
  },
];

/** Every line of `text` (a file at `rel`, relative to test/) that a rule flags, as "rel:line: rule: text". */
function scan(rel: string, text: string): string[] {
  const found: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (/^\s*(?:\/\/|\*|\/\*)/.test(line)) return;
    for (const r of RULES) {
      if (r.home.some((h) => (h.endsWith('/') ? rel.startsWith(h) : rel === h)) || !r.pattern.test(line)) continue;
      found.push(`${rel}:${i + 1}: ${r.name}: ${line.trim().slice(0, 160)}\n    use ${r.remedy}`);
    }
  });
  return found;
}

test('the rules flag the lines that made two runs collide, and their remedies pass', () => {
  const collided = [
    "    ip('netns', 'add', ns);",
    "    ip('link', 'add', `${tag}h`, 'type', 'veth', 'peer', 'name', `${tag}n`);",
    "execFileSync('sh', ['-c', 'ip netns add t1 && ip link add v0 type veth peer name v1']);",
    "    const DNS = '127.0.0.78';",
    "    server.listen(8080, '127.0.0.1');",
    "    port = await peers.tcp('127.0.0.1', 8080);",
    "const sleeping = (arg: string): boolean => processesWithCmdline(`sleep ${arg}`).some((p) => p.cmdline.startsWith('sleep '));",
    "  return readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).filter((p) => {",
    "    spawnSync('pgrep', ['-f', 'qemu-system']);",
    "      s.linux = { ...s.linux, cgroupsPath: '/stockade-light-test' };",
    "const CGROUP_PARENT = '/stockade-clients-docker';",
    "    writeFileSync('/tmp/stockade-test.sock', '');",
  ];
  for (const line of collided) assert.equal(scan('integration/x.test.ts', line).length, 1, line);
  const scoped = [
    '    veth = makeVethNetns();',
    "    DNS = await dns.dns([{ 'moving.test': { a: [`${net}.2`], ttl: 1 } }]);",
    "    port = await peers.tcp('127.0.0.1');",
    "    const s = createServer().listen(0, '127.0.0.1', () => {",
    "const sleeping = (arg: string): boolean => runProcesses(`sleep ${arg}`).some((p) => p.cmdline.startsWith('sleep '));",
    "      s.linux = { ...s.linux, cgroupsPath: `/stockade-light-test-${RUN_TAG}`, resources: { pids: { limit: 50 } } };",
    'const CGROUP_PARENT = `/stockade-clients-podman-${RUN_TAG}`;',
    "  return mkdtempSync(`/tmp/sc-${client}-`);",
    "    const r = rt.run(['do', '--', 'sh', '-c', 'echo data > /tmp/f && cat /tmp/f']);",
    '  fs.mkdirSync("/tmp/n/m", { recursive: true });',
    "      's.listen(16)',",
    "    { name: 'ps', needs: 'ps', script: 'ps -o pid,comm | head -2' },",
  ];
  for (const line of scoped) assert.deepEqual(scan('integration/x.test.ts', line), [], line);
});

test('no test source makes a fixed network name, looks at every process on the host, or takes a fixed host path or cgroup', () => {
  const root = join(packageRoot(), 'test');
  const self = join('unit', 'ci', 'shared-host.test.ts');
  const found = tsSources(root).filter((f) => relative(root, f) !== self).flatMap((f) => scan(relative(root, f), readFileSync(f, 'utf8')));
  assert.deepEqual(found, []);
});
