// Prints the scenario x client x runtime table from the lines the client suites append to STOCKADE_CLIENT_MATRIX.
//   node matrix.js RESULTS.jsonl              the table for the terminal
//   node matrix.js RESULTS.jsonl --markdown   the same as Markdown (docs/design/client-matrix.md is made so)
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
const markdown = process.argv.includes('--markdown');
if (file === undefined) {
  process.stderr.write('usage: node matrix.js RESULTS.jsonl [--markdown]\n');
  process.exit(2);
}
// A cell run again (run-full.sh with STOCKADE_CLIENT_RESULTS kept) is its last run.
const all = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Row);
const cells = new Map<string, Row>();
for (const r of all) cells.set(`${r.client}/${r.runtime}/${r.scenario}`, r);
const rows = all.filter((r) => cells.get(`${r.client}/${r.runtime}/${r.scenario}`) === r);
// Clients in the order they ran; runtimes with runc first (the reference), then stockade's levels.
const ORDER = ['runc', 'stockade', 'stockade-sentry', 'stockade-vm'];
const rank = (r: string): number => (ORDER.includes(r) ? ORDER.indexOf(r) : ORDER.length);
const clients = [...new Set(rows.map((r) => r.client))];
const columns = clients.flatMap((c) => [...new Set(rows.filter((r) => r.client === c).map((r) => r.runtime))].sort((a, b) => rank(a) - rank(b)).map((rt) => `${c}/${rt}`));
const ids = SCENARIOS.map((s) => s.id).filter((id) => rows.some((r) => r.scenario === id));
const failed = rows.filter((r) => r.outcome === 'fail').length;
const summary = `${rows.length} runs: ${rows.filter((r) => r.outcome === 'pass').length} passed, ${failed} failed, ${rows.filter((r) => r.outcome === 'skip').length} skipped`;

if (markdown) {
  // Each note once, numbered; a cell names its note.
  const notes: string[] = [];
  const noteNo = (n: string): number => {
    const i = notes.indexOf(n);
    if (i >= 0) return i + 1;
    notes.push(n);
    return notes.length;
  };
  const level = (rt: string): string => (rt === 'stockade' ? 'stockade (namespaces)' : rt === 'stockade-sentry' ? 'stockade (sentry)' : rt === 'stockade-vm' ? 'stockade (vm)' : rt);
  const out = [`| scenario | ${columns.map((c) => `${c.split('/')[0]}: ${level(c.split('/')[1] ?? '')}`).join(' | ')} |`, `|---|${columns.map(() => '---').join('|')}|`];
  for (const id of ids) {
    const cells = columns.map((c) => {
      const r = rows.find((x) => x.scenario === id && `${x.client}/${x.runtime}` === c);
      if (r === undefined) return 'not run';
      const ref = r.note !== '' ? ` [${noteNo(r.note)}]` : '';
      return r.outcome === 'pass' ? `pass${ref}` : r.outcome === 'skip' ? `cannot${ref}` : `**fail**${ref}`;
    });
    out.push(`| \`${id}\` | ${cells.join(' | ')} |`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
  if (notes.length > 0) process.stdout.write(`\n${notes.map((n, i) => `${i + 1}. ${n}`).join('\n')}\n`);
  process.stdout.write(`\n${summary}\n`);
} else {
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
  process.stdout.write(`\n${summary}\n`);
}
