// A node:test reporter that writes one JSON line per test file with its wall time (the file's
// process, from its start to its end: loading, hooks and tests), for run-suite.ts's table.
import type { TestEvent } from 'node:test/reporters';

async function* durationReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  for await (const e of source) {
    // With --test, each file is a test of the runner's own whose name is the file's path.
    if (e.type !== 'test:complete' || e.data.nesting !== 0 || e.data.file === undefined || e.data.name !== e.data.file) continue;
    const ms = (e.data.details as { duration_ms?: number }).duration_ms ?? 0;
    yield `${JSON.stringify({ file: e.data.file, ms })}\n`;
  }
}

export = durationReporter;
