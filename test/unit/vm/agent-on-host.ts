// The real agent run on the host with --channel-fd, for tests of its request checks: each
// request is asked in turn and its answer awaited. Outside a guest the agent refuses what would
// change the machine (EPERM, "not in the guest") only after a request decoded and checked out.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { FrameDecoder, encodeHost } from '../../../src/vm/codec';
import { agentBinary } from '../../../src/vm/assets';
import type { GuestMessage, HostMessage } from '../../../src/vm/protocol';

/** Why the agent cannot be run here, checked before a test starts. */
export const agentSkip = existsSync(agentBinary()) ? undefined : `${agentBinary()} is not built (npm run build:native)`;

export interface AgentOnHost {
  /** Sends m with an id of its own (1, 2, ...: the agent answers no request numbered 0) and resolves to the agent's answer. */
  ask(m: HostMessage): Promise<GuestMessage>;
  /** Sends m and checks the answer is an ERROR whose message matches pattern. */
  refused(m: HostMessage, pattern: RegExp): Promise<void>;
  kill(): void;
}

export function agentOnHost(): AgentOnHost {
  const child = spawn(agentBinary(), ['--channel-fd', '3'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  const channel = child.stdio[3] as Socket;
  const decoder = FrameDecoder.fromGuest();
  const got: GuestMessage[] = [];
  let wake: (() => void) | undefined;
  channel.on('data', (c: Buffer) => { got.push(...decoder.push(c)); wake?.(); });
  let id = 1;
  const ask = async (m: HostMessage): Promise<GuestMessage> => {
    channel.write(encodeHost({ ...m, id: id++ }));
    while (got.length === 0) await new Promise<void>((r) => { wake = r; });
    return got.shift()!;
  };
  return {
    ask,
    async refused(m, pattern) {
      const r = await ask(m);
      assert.equal(r.type, 'ERROR', JSON.stringify(m));
      assert.match(r.type === 'ERROR' ? r.message : '', pattern);
    },
    kill: () => { child.kill('SIGKILL'); },
  };
}
