// The build's warm-up of `stockade do` (src/cli/do-warm-up.ts): it must reach do's own code and touch nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { command } from '../../../src/cli/do';
import { warmUpDo } from '../../../src/cli/do-warm-up';
import { StockadeError } from '../../../src/errors';

test('the warm-up runs do\'s checks, identity, hidden paths, spec and plan, and leaves nothing on disk', () => {
  warmUpDo();
  assert.equal(existsSync('/var/lib/stockade/warm-up-do'), false);
});

// The warm-up calls run() with a context that holds only the global --isolation: it is safe only
// while do refuses a bad --memory before it reads the rest (its state root, log, levels). Were the
// check moved after them, this fails with a TypeError instead of the one-line refusal.
test('do refuses a bad --memory before it touches its context (what the warm-up relies on)', async () => {
  await assert.rejects(
    command.run(['--isolation', 'namespaces', '--memory', 'none', '--', 'true'], { isolation: 'namespaces' } as never),
    (e: unknown) => e instanceof StockadeError && e.code === 'USAGE' && /--memory "none"/.test(e.message),
  );
});
