// The exit status of a failed call where runc's is not 1 (exec's failures: 255), carried from a command to main.

const STATUS = Symbol('stockade.exitStatus');

/** Marks `e` (thrown on) so that main exits with `status` instead of 1 once it has reported it. */
export function failingWith(e: unknown, status: number): unknown {
  if (typeof e === 'object' && e !== null) Object.defineProperty(e, STATUS, { value: status, configurable: true });
  return e;
}

/** The status a failed call exits with: what failingWith marked, else 1. */
export function exitStatusOf(e: unknown): number {
  const status = typeof e === 'object' && e !== null ? (e as Record<symbol, unknown>)[STATUS] : undefined;
  return typeof status === 'number' ? status : 1;
}
