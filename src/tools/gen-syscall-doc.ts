// Writes docs/sentry-syscalls.md from the sentry's syscall table; with --check, fails when the committed file differs.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderMarkdown } from '../sentry/table/render';

export const SYSCALL_DOC = join(__dirname, '..', '..', 'docs', 'sentry-syscalls.md');

if (require.main === module) {
  const text = renderMarkdown();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(SYSCALL_DOC, 'utf8');
    } catch { /* a missing doc differs like any other */ }
    if (current !== text) {
      process.stderr.write(`${SYSCALL_DOC} is out of date: run npm run gen:syscall-doc\n`);
      process.exit(1);
    }
  } else {
    writeFileSync(SYSCALL_DOC, text);
  }
}
