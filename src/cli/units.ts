// Sizes and durations written the way runc's flags take them: "64m", "1.5g", "-1"; "5s", "250ms", "1m30s".
import { StockadeError } from '../errors';

const BINARY: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** docker/go-units RAMInBytes (binary multiples, optional i and b), with "-1" meaning unlimited. */
export function parseMemory(value: string, flag: string): number {
  if (value === '-1') return -1;
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(value);
  const unit = BINARY[(m?.[2] ?? '').toLowerCase()];
  if (m?.[1] === undefined || unit === undefined) {
    throw new StockadeError('USAGE', `update: --${flag}: invalid size ${JSON.stringify(value)} (a number with an optional k, m, g, t or p suffix, or -1)`, { flag });
  }
  return Math.trunc(Number(m[1]) * unit);
}

// µs spelled as an escape: the bundle stays ASCII (test/unit/cli/bundle.test.ts says why).
const DURATION_UNITS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, '\u00b5s': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go time.Duration string, in milliseconds. */
export function parseDuration(value: string, flag: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(value); m !== null; m = re.exec(value)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? 0);
    consumed = re.lastIndex;
  }
  if (value === '' || consumed !== value.length) {
    throw new StockadeError('USAGE', `--${flag}: invalid duration ${JSON.stringify(value)} (e.g. 5s, 500ms, 1m)`, { flag });
  }
  return total;
}
