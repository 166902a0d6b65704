// A node:test reporter that writes one JSON line per skipped test or suite: its file, its path of
// names, and the reason given. test/ci/run-suite.ts checks those reasons against the accepted list.
import type { TestEvent } from 'node:test/reporters';

interface Skip { file: string; path: string[]; reason: string }

async function* skipReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const stack: string[] = [];
  for await (const e of source) {
    if (e.type === 'test:start') {
      stack.length = e.data.nesting;
      stack.push(e.data.name);
    } else if (e.type === 'test:pass' || e.type === 'test:fail') {
      const skip = (e.data as { skip?: string | boolean }).skip;
      if (skip === undefined || skip === false) continue;
      const path = [...stack.slice(0, e.data.nesting), e.data.name];
      const line: Skip = { file: e.data.file ?? '', path, reason: typeof skip === 'string' ? skip : '' };
      yield `${JSON.stringify(line)}\n`;
    }
  }
}

export = skipReporter;
