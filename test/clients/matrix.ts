// Prints the scenario x client x runtime table from the lines the client suites append to STOCKADE_CLIENT_MATRIX.
import { readFileSync } from 'node:fs';
import { SCENARIOS } from './scenarios';

interface Row {
  readonly client: string;
  readonly runtime: string;
  readonly scenario: string;
  readonly outcome: 'pass' | 'fail' | 'skip';
  readonly ms: number;
  readonly note: string;
}

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write('usage: node matrix.js RESULTS.jsonl\n');
  process.exit(2);
}
const rows = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Row);
const columns = [...new Set(rows.map((r) => `${r.client}/${r.runtime}`))];
const ids = SCENARIOS.map((s) => s.id).filter((id) => rows.some((r) => r.scenario === id));
const width = Math.max(...columns.map((c) => c.length), 6);
const pad = (s: string, n: number): string => s + ' '.repeat(Math.max(0, n - s.length));
const idWidth = Math.max(...ids.map((id) => id.length), 8);

const lines = [`${pad('scenario', idWidth)}  ${columns.map((c) => pad(c, width)).join('  ')}`];
const notes: string[] = [];
for (const id of ids) {
  const cells = columns.map((c) => {
    const r = rows.find((x) => x.scenario === id && `${x.client}/${x.runtime}` === c);
    if (r === undefined) return pad('-', width);
    const mark = r.outcome === 'pass' && r.note !== '' ? 'pass*' : r.outcome;
    if (r.note !== '') notes.push(`${id} ${c} ${r.outcome}: ${r.note}`);
    return pad(`${mark} ${(r.ms / 1000).toFixed(1)}s`, width);
  });
  lines.push(`${pad(id, idWidth)}  ${cells.join('  ')}`);
}
process.stdout.write(`${lines.join('\n')}\n`);
if (notes.length > 0) process.stdout.write(`\n* and skips:\n${[...new Set(notes)].map((n) => `  ${n}`).join('\n')}\n`);
const failed = rows.filter((r) => r.outcome === 'fail').length;
process.stdout.write(`\n${rows.length} runs: ${rows.filter((r) => r.outcome === 'pass').length} passed, ${failed} failed, ${rows.filter((r) => r.outcome === 'skip').length} skipped\n`);
