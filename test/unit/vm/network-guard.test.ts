// The vm level's wiring redirects every frame of an interface into the VM. Done from the host's own
// network namespace (a keeper run by hand, a path that forgot to enter the container's), it would
// take the host's network away: wireInterfaces refuses there, at the act. The positive control does
// the same call in a network namespace of its own and gets the tap and both redirects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { wireInterfaces, type ContainerNetwork } from '../../../src/vm/network';
import { makeVethNetns } from '../../helpers/net-scope';

function sameNetns(a: string, b: string): boolean {
  try {
    return statSync(a).ino === statSync(b).ino;
  } catch {
    return false;
  }
}

const skip = process.getuid?.() !== 0 ? 'needs root (taps and tc filters)'
  : !sameNetns('/proc/self/ns/net', '/proc/1/ns/net') && statSync('/proc/self/ns/net').ino >= 0xf0000000 ? 'the test process is not in the host\'s network namespace (nor can PID 1\'s be read)'
    : undefined;

// A name no host has: were the guard gone, the call would fail later, on this name, with another error.
const net = (name: string): ContainerNetwork => ({
  interfaces: [{ name, mac: '02:00:00:00:00:01', mtu: 1500, addresses: [] }],
  routes: [],
});

test('wiring an interface from the host\'s own network namespace is refused before any tap or filter is made', { skip }, () => {
  const before = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
  assert.throws(() => wireInterfaces(net('stkguard0')), /vm network: refusing to give stkguard0 to a VM from the host's own network namespace/);
  const names = (s: string) => s.split('\n').map((l) => l.split(': ')[1] ?? '').filter((n) => n !== '').sort().join(' ');
  assert.equal(names(spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout), names(before), 'a link was made or removed');
});

test('in a network namespace of its own the same call wires the interface to a tap, both ways', { skip }, () => {
  const mod = join(__dirname, '../../../src/vm/network.js');
  const v = makeVethNetns();
  try {
    const script = `
      const { wireInterfaces } = require(${JSON.stringify(mod)});
      const { execFileSync } = require('node:child_process');
      const { nics, wired } = wireInterfaces({ interfaces: [{ name: ${JSON.stringify(v.nsIf)}, mac: '02:00:00:00:00:01', mtu: 1500, addresses: [] }], routes: [] });
      const filters = execFileSync('tc', ['filter', 'show', 'dev', ${JSON.stringify(v.nsIf)}, 'ingress'], { encoding: 'utf8' });
      console.log(JSON.stringify({ nics: nics.length, tap: wired[0].tap, redirect: /mirred.*Redirect to device/.test(filters) }));
    `;
    const r = spawnSync('ip', ['netns', 'exec', v.ns, process.execPath, '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { nics: number; tap: string; redirect: boolean };
    assert.equal(got.nics, 1);
    assert.match(got.tap, /^\S+$/);
    assert.equal(got.redirect, true, r.stdout);
  } finally {
    v.remove();
  }
});
