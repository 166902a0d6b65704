// The bad inputs every way into the CLI must meet with a one-line error: bad-input.test runs them,
// planner.test runs them through the planner and without it and compares the two.
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { Spec } from '../../src/oci/spec';
import type { Runtime } from './harness';

export interface Case {
  name: string;
  /** The config.json text or spec; a bundle is made for it. */
  config?: string | ((s: Spec) => void);
  /** Arguments after the global flags; BUNDLE and ID are replaced. */
  args: string[];
  /** Runs first (e.g. creating a container so a duplicate id exists). */
  setup?: (rt: Runtime, bundle: string, id: string) => void;
  error: RegExp;
}

export const CASES: Case[] = [
  { name: 'malformed JSON', config: '{"ociVersion": "1.3.0",, }', args: ['create', '-b', 'BUNDLE', 'ID'], error: /config\.json: malformed JSON at line 1 column 24/ },
  { name: 'schema violation', config: (s) => { (s.process as unknown as { args: unknown }).args = 'sh'; }, args: ['create', '-b', 'BUNDLE', 'ID'], error: /config\.json: process\.args: must be array/ },
  { name: 'unknown namespace type', config: (s) => { s.linux!.namespaces!.push({ type: 'bogus' as 'pid' }); }, args: ['create', '-b', 'BUNDLE', 'ID'], error: /linux\.namespaces\[\d\]\.type: must be equal to one of the allowed values/ },
  { name: 'missing rootfs', config: (s) => { s.root = { path: 'nope' }; }, args: ['create', '-b', 'BUNDLE', 'ID'], error: /root file system .*\/nope \(root\.path\) does not exist/ },
  { name: 'missing bundle', args: ['create', '-b', '/nonexistent/bundle', 'ID'], error: /bundle \/nonexistent\/bundle: config\.json not found/ },
  { name: 'duplicate id', config: (s) => { s.process!.args = ['/bin/probe', 'sleep', '100']; }, args: ['create', '-b', 'BUNDLE', 'dup'], setup: (rt, b) => { assert.equal(rt.run(['create', '-b', b, 'dup']).status, 0); }, error: /container with id dup already exists/ },
  { name: 'unknown id (state)', args: ['state', 'ghost'], error: /container ghost does not exist/ },
  { name: 'unknown id (start)', args: ['start', 'ghost'], error: /container ghost does not exist/ },
  { name: 'unknown id (kill)', args: ['kill', 'ghost'], error: /container ghost does not exist/ },
  { name: 'unknown id (delete)', args: ['delete', 'ghost'], error: /container ghost does not exist/ },
  { name: 'invalid id characters', config: () => undefined, args: ['create', '-b', 'BUNDLE', '../escape'], error: /invalid container id "\.\.\/escape"/ },
  { name: 'starting a running container', config: (s) => { s.process!.args = ['/bin/probe', 'sleep', '100']; }, args: ['start', 'ID'], setup: (rt, b, id) => { assert.equal(rt.run(['run', '-d', '-b', b, id]).status, 0); }, error: /cannot start container \S+: it is running/ },
  { name: 'an unknown signal', config: (s) => { s.process!.args = ['/bin/probe', 'sleep', '100']; }, args: ['kill', 'ID', 'SIGBOGUS'], setup: (rt, b, id) => { assert.equal(rt.run(['create', '-b', b, id]).status, 0); }, error: /unknown signal "SIGBOGUS"/ },
  { name: 'an unmappable uid', config: (s) => { s.linux!.namespaces!.push({ type: 'user' }); s.linux!.uidMappings = [{ containerID: 0, hostID: 300000, size: 1000 }]; s.linux!.gidMappings = [{ containerID: 0, hostID: 300000, size: 1000 }]; s.process!.user = { uid: 5000, gid: 0 }; }, args: ['create', '-b', 'BUNDLE', 'ID'], error: /setresuid: uid 5000: invalid argument \(EINVAL\)\n?$/ },
  { name: 'a failing mount', config: (s) => { s.mounts!.push({ destination: '/mnt/x', type: 'nosuchfs', source: 'none' }); }, args: ['create', '-b', 'BUNDLE', 'ID'], error: /mount.*\/mnt\/x/ },
  { name: 'a missing bind source', config: (s) => { s.mounts!.push({ destination: '/mnt/x', type: 'bind', source: '/nonexistent/src', options: ['rbind'] }); }, args: ['create', '-b', 'BUNDLE', 'ID'], error: /mounts\[\d+\]\.source: bind source \/nonexistent\/src does not exist/ },
  { name: 'a nonexistent cwd', config: (s) => { s.process!.cwd = '/no/such/dir'; }, args: ['create', '-b', 'BUNDLE', 'ID'], error: /cwd.*\/no\/such\/dir/ },
  { name: 'a nonexistent executable', config: (s) => { s.process!.args = ['no-such-program']; }, args: ['create', '-b', 'BUNDLE', 'ID'], error: /"no-such-program": executable file not found in \$PATH/ },
  { name: 'a process that fails at exec', config: (s) => { s.process!.args = ['/etc/passwd']; }, args: ['run', '-b', 'BUNDLE', 'ID'], setup: (_rt, b) => { chmodSync(join(b, 'rootfs', 'etc', 'passwd'), 0o755); }, error: /exec.*\/etc\/passwd.*(ENOEXEC|Exec format error)/ },
  { name: 'an unknown capability', config: (s) => { s.process!.capabilities = { bounding: ['CAP_BOGUS'] }; }, args: ['create', '-b', 'BUNDLE', 'ID'], error: /process\.capabilities\.bounding\[0\].*CAP_BOGUS/ },
  { name: 'an unknown rlimit', config: (s) => { s.process!.rlimits = [{ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }]; }, args: ['create', '-b', 'BUNDLE', 'ID'], error: /process\.rlimits\[0\]\.type.*RLIMIT_BOGUS/ },
  { name: 'a net sysctl without a network namespace', config: (s) => { s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'network'); s.linux!.sysctl = { 'net.ipv4.ip_forward': '1' }; }, args: ['create', '-b', 'BUNDLE', 'ID'], error: /linux\.sysctl.*net\.ipv4\.ip_forward/ },
  { name: 'an unknown sysctl', config: (s) => { s.linux!.sysctl = { 'net.ipv4.bogus_key': '1' }; }, args: ['create', '-b', 'BUNDLE', 'ID'], error: /sysctl.*net\.ipv4\.bogus_key/ },
  { name: 'a terminal without --console-socket', config: (s) => { s.process!.terminal = true; }, args: ['create', '-b', 'BUNDLE', 'ID'], error: /process\.terminal is true but no --console-socket/ },
  { name: 'a console socket nobody listens on', config: (s) => { s.process!.terminal = true; }, args: ['create', '--console-socket', '/nonexistent/console.sock', '-b', 'BUNDLE', 'ID'], error: /console.*\/nonexistent\/console\.sock/ },
  { name: 'joining a namespace that does not exist', config: (s) => { s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'network' ? { type: 'network', path: '/proc/999999999/ns/net' } : n)); }, args: ['create', '-b', 'BUNDLE', 'ID'], error: /\/proc\/999999999\/ns\/net/ },
  { name: 'an unknown flag', args: ['create', '--bogus', 'ID'], error: /create: unknown flag --bogus/ },
  { name: 'a bad --log-format', args: ['--log-format', 'xml', 'list'], error: /--log-format must be text or json/ },
];
