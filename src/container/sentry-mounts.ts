// The sockets of a container's sentry in its state directory: where it takes processes exec'd
// into it and containers of its pod (src/sentry/host.ts), and `stockade trace` readers.

/** The join socket in the container's state directory. */
export const SENTRY_JOIN_SOCKET = 'sentry.sock';

/** Where `stockade trace ID` connects. */
export const TRACE_SOCKET = 'trace.sock';
