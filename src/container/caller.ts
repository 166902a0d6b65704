// The process that made the call, as far as a call takes it from its own process: its pid (`do`
// names its container after it and ties the container to it) and which of its stdio are terminals.
// In a cold call that is this process; in the planner, the front that asked (src/planner/).

/** What the planner's front says of itself (the CALLER frame). */
export interface Caller {
  readonly pid: number;
  /** Whether the caller's fd 0, 1 and 2 are terminals. */
  readonly tty: readonly [boolean, boolean, boolean];
}

let caller: Caller | undefined;

/** The planner's, for the request it serves; undefined restores this process. */
export function setCaller(c: Caller | undefined): void {
  caller = c;
}

/** The calling process's pid: the process whose death ends a `do`'s container. */
export function callerPid(): number {
  return caller?.pid ?? process.pid;
}

/** Whether the caller's stdin (0), stdout (1) or stderr (2) is a terminal. */
export function callerIsTTY(fd: 0 | 1 | 2): boolean {
  if (caller !== undefined) return caller.tty[fd];
  const stream = fd === 0 ? process.stdin : fd === 1 ? process.stdout : process.stderr;
  return stream.isTTY === true;
}
