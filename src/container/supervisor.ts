// How a level that supervises the workload's syscalls plugs into create: the lifecycle knows this interface, not the levels.

/**
 * A supervisor of the workload's syscalls (the sentry). stockade-init loads `filter` last, just
 * before the workload's execve, with SECCOMP_FILTER_FLAG_NEW_LISTENER, and sends the listener over
 * the socket whose other end is `childSocket`; from then on the supervisor answers every call the
 * filter marks NOTIFY.
 */
export interface Supervisor {
  readonly filter: { readonly flags: number; readonly program: Buffer };
  /** An fd of this process, passed to stockade-init; its copy here is closed by `launched`. */
  readonly childSocket: number;
  /** stockade-init holds its end now (or failed): this process's copy is closed. */
  launched(): void;
  /** Settles when the supervisor has stopped: every supervised process is gone. */
  readonly done: Promise<void>;
  /** Stops the supervisor at once (a create that failed). */
  abort(): void;
}
