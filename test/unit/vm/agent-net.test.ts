// NET_LINK, NET_ADDR, NET_ROUTE (the container's network in the guest) against the real agent run
// on the host with --channel-fd: every bad field answered with its own error, each request refused
// outside the guest (EPERM) only after it decoded and checked out, and the agent still serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { guestNetworkRequests } from '../../../src/vm/network';
import { AGENT_PROTOCOL_VERSION, NET_FAMILIES } from '../../../src/vm/protocol';
import { agentOnHost, agentSkip as skip } from './agent-on-host';

test('NET_LINK, NET_ADDR, NET_ROUTE: sizes, names, prefixes and flags checked; refused on the host after decoding', { skip }, async () => {
  const agent = agentOnHost();
  const expect = agent.refused;
  const mac = Buffer.from([2, 0, 0, 0, 0, 1]);
  const v4 = Buffer.from([10, 0, 0, 2]);
  const link = { type: 'NET_LINK' as const, id: 0, mac, name: 'eth0', mtu: 1500 };
  const addr = { type: 'NET_ADDR' as const, id: 0, name: 'eth0', family: NET_FAMILIES.INET, address: v4, prefix: 24 };
  const route = { type: 'NET_ROUTE' as const, id: 0, name: 'eth0', family: NET_FAMILIES.INET, dst: Buffer.alloc(0), prefix: 0, gateway: Buffer.from([10, 0, 0, 1]), metric: 0, flags: 0 };
  try {
    await expect({ ...link, mac: Buffer.alloc(5) }, /a MAC of 5 bytes/);
    await expect({ ...link, name: 'a/b' }, /a\/b is not an interface name/);
    await expect({ ...link, name: 'x'.repeat(16) }, /is not an interface name/);
    await expect({ ...link, mtu: 67 }, /MTU 67/);
    await expect(link, /not in the guest/);
    await expect({ ...addr, family: 3 }, /family 3/);
    await expect({ ...addr, address: Buffer.alloc(16) }, /an address of 16 bytes for family 2/);
    await expect({ ...addr, prefix: 33 }, /prefix \/33/);
    await expect(addr, /not in the guest/);
    await expect({ ...route, gateway: Buffer.alloc(3) }, /a gateway of 3 bytes/);
    await expect({ ...route, prefix: 8 }, /prefix \/8/);
    await expect({ ...route, flags: 2 }, /unknown flags 0x2/);
    await expect({ ...route, name: '', gateway: Buffer.alloc(0) }, /neither an interface nor a gateway/);
    await expect(route, /not in the guest/);
    const hello = await agent.ask({ type: 'HELLO', id: 0, version: AGENT_PROTOCOL_VERSION });
    assert.equal(hello.type, 'HELLO_OK');
  } finally {
    agent.kill();
  }
});

test('the guest\'s requests from a namespace\'s network: links, then addresses, then routes (IPv6 expanded, onlink kept)', () => {
  const reqs = guestNetworkRequests({
    interfaces: [{ name: 'eth0', mac: '02:42:ac:11:00:02', mtu: 1450, addresses: [{ family: 4, address: '172.17.0.2', prefix: 16 }, { family: 6, address: 'fd00::2', prefix: 64 }] }],
    routes: [{ family: 4, dst: '169.254.1.1', prefix: 32, dev: 'eth0' }, { family: 4, prefix: 0, gateway: '169.254.1.1', dev: 'eth0', onlink: true, metric: 5 }],
  });
  assert.deepEqual(reqs.map((r) => r.type), ['NET_LINK', 'NET_ADDR', 'NET_ADDR', 'NET_ROUTE', 'NET_ROUTE']);
  assert.deepEqual(reqs[0], { type: 'NET_LINK', mac: Buffer.from([2, 0x42, 0xac, 0x11, 0, 2]), name: 'eth0', mtu: 1450 });
  assert.deepEqual(reqs[2], { type: 'NET_ADDR', name: 'eth0', family: NET_FAMILIES.INET6, address: Buffer.from('fd000000000000000000000000000002', 'hex'), prefix: 64 });
  assert.deepEqual(reqs[4], { type: 'NET_ROUTE', name: 'eth0', family: NET_FAMILIES.INET, dst: Buffer.alloc(0), prefix: 0, gateway: Buffer.from([169, 254, 1, 1]), metric: 5, flags: 1 });
});
