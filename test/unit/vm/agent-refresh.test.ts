// REFRESH (a template's clone made its own: entropy, clock, hostname) against the real agent run
// on the host with --channel-fd: every bad field answered with its own error, the request
// itself refused outside the guest (EPERM) only after it decoded, and the agent still serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT_PROTOCOL_VERSION, type HostMessageOf } from '../../../src/vm/protocol';
import { agentOnHost, agentSkip as skip } from './agent-on-host';

test('REFRESH: seed size, hostname and nanoseconds checked; refused on the host after decoding', { skip }, async () => {
  const agent = agentOnHost();
  const refresh = (over: Partial<HostMessageOf<'REFRESH'>>): HostMessageOf<'REFRESH'> => ({
    type: 'REFRESH', id: 7, seed: Buffer.alloc(64, 1), secondsHigh: 0, secondsLow: 1_800_000_000, nanoseconds: 5, hostname: 'clone', ...over,
  });
  try {
    const expect = agent.refused;
    await expect(refresh({ seed: Buffer.alloc(31) }), /seed of 31 bytes/);
    await expect(refresh({ seed: Buffer.alloc(513) }), /seed of 513 bytes/);
    await expect(refresh({ hostname: '' }), /hostname of 0 bytes/);
    await expect(refresh({ hostname: 'h'.repeat(65) }), /hostname of 65 bytes/);
    await expect(refresh({ nanoseconds: 1_000_000_000 }), /1000000000 nanoseconds/);
    // Well formed: refused only because this agent is not PID 1 of a guest (the host's clock,
    // name and entropy pool are never touched by it).
    await expect(refresh({}), /not in the guest/);
    const hello = await agent.ask({ type: 'HELLO', id: 8, version: AGENT_PROTOCOL_VERSION });
    assert.equal(hello.type, 'HELLO_OK');
  } finally {
    agent.kill();
  }
});
