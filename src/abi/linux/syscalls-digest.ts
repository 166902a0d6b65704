// The sha256 of the five syscall tables (syscalls-<abi>.ts, as canonical JSON in the order
// x86_64, x32, i386, aarch64, arm): an input of the seccomp filter cache's key, written down so
// that a CLI call does not hash some 2,000 entries (several ms) before every cache lookup.
// test/unit/seccomp/cache.test.ts recomputes it and fails, with the new value, when a table changed.
export const SYSCALL_TABLES_DIGEST = '56d1a90967c84cead102a845a45f261d7326f32da624900ccfe49368b1a51f8a';
