// Where a container's sentry takes processes exec'd into it and containers of its pod (src/sentry/host.ts).

/** The join socket in the container's state directory. */
export const SENTRY_JOIN_SOCKET = 'sentry.sock';
