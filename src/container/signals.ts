// Signal names and numbers as runc accepts them: "TERM", "SIGTERM", "15", "RTMIN+3".
import { SIGNALS, SIGRTMAX, SIGRTMIN } from '../abi/linux/constants';
import { StockadeError } from '../errors';

/**
 * `zero`: signal 0 is taken too (kill, as runc's: it sends nothing and checks that the container
 * runs); nowhere else does a signal 0 mean anything.
 */
export function parseSignal(raw: string, opts: { readonly zero?: boolean } = {}): number {
  const s = raw.trim().toUpperCase();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if ((n >= 1 || (n === 0 && opts.zero === true)) && n <= SIGRTMAX) return n;
  } else {
    const name = s.startsWith('SIG') ? s : `SIG${s}`;
    const known = (SIGNALS as Readonly<Record<string, number>>)[name];
    if (known !== undefined) return known;
    const rt = /^SIGRT(MIN|MAX)([+-]\d+)?$/.exec(name);
    if (rt !== null) {
      const n = (rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX) + Number(rt[2] ?? 0);
      if (n >= SIGRTMIN && n <= SIGRTMAX) return n;
    }
  }
  throw new StockadeError('SIGNAL_INVALID', `unknown signal ${JSON.stringify(raw)}`, { signal: raw });
}
