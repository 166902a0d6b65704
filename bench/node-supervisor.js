// The floor of a seccomp supervisor written in Node with stockade's addon (native/addon/notify.c):
// bench/c-supervisor.c --serve-with hands it the listener as fd 3. bench/supervisor-cpu.sh runs it
// beside the sentry and the C supervisor, so the sentry's cost per call splits into the Node
// boundary (this) and the sentry's own work (the rest).
//   node bench/node-supervisor.js noop   answers every call 0 at once: RECV and SEND alone
//   node bench/node-supervisor.js stat   serves stat and newfstatat with the C supervisor's calls
//                                        through the addon (process_vm_readv, NOTIF_ID_VALID,
//                                        openat2 in "/", fstat, close, NOTIF_ID_VALID,
//                                        process_vm_writev, SEND); anything else is CONTINUEd
'use strict';
const { join } = require('node:path');
const { sentryNative } = require(join(__dirname, '..', 'dist', 'native', 'addon.js'));

const mode = process.argv[2];
if (mode !== 'noop' && mode !== 'stat') {
  process.stderr.write('usage: node bench/node-supervisor.js noop|stat (the listener as fd 3)\n');
  process.exit(2);
}
const native = sentryNative();
const LISTENER = 3;
const NR_STAT = 4, NR_OPENAT2 = 437, NR_NEWFSTATAT = 262, NR_CLOSE = 3, NR_OPEN = 2;
const AT_FDCWD = -100, AT_EMPTY_PATH = 0x1000;
const O_PATH = 0o10000000, O_DIRECTORY = 0o200000, O_CLOEXEC = 0o2000000;
const RESOLVE_NO_MAGICLINKS = 0x02, RESOLVE_IN_ROOT = 0x10;
const CONTINUE = 1;
const notif = Buffer.alloc(128);
const statBuf = Buffer.alloc(144);
const how = Buffer.alloc(24);
how.writeBigUInt64LE(BigInt(O_PATH | O_CLOEXEC), 0);
how.writeBigUInt64LE(BigInt(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), 16);
const root = native.syscall(NR_OPEN, '/', O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
if (root < 0) throw new Error(`open / O_PATH: errno ${-root}`);

/** The C supervisor's serve_stat: 0 or -errno; undefined for a call it would CONTINUE. */
function serveStat(id, pid, nr) {
  const dirfd = nr === NR_NEWFSTATAT ? notif.readInt32LE(32) : AT_FDCWD;
  const addr = notif.readBigUInt64LE(nr === NR_NEWFSTATAT ? 40 : 32);
  const out = notif.readBigUInt64LE(nr === NR_NEWFSTATAT ? 48 : 40);
  if (nr === NR_NEWFSTATAT && notif.readUInt32LE(56) !== 0) return undefined;
  const path = native.memReadString(pid, addr, 4096);
  if (typeof path === 'number') return path;
  if (!native.notifIdValid(LISTENER, id)) return -2;
  if (dirfd !== AT_FDCWD || path[0] !== '/') return undefined;
  const fd = native.syscall(NR_OPENAT2, root, path, how, 24);
  if (fd < 0) return fd;
  const r = native.syscall(NR_NEWFSTATAT, fd, '', statBuf, AT_EMPTY_PATH);
  native.syscall(NR_CLOSE, fd);
  if (r < 0) return r;
  if (!native.notifIdValid(LISTENER, id)) return -2;
  const w = native.memWrite(pid, out, statBuf, 144);
  return w === 144 ? 0 : w < 0 ? w : -14;
}

for (;;) {
  const r = native.notifRecv(LISTENER, notif);
  if (r === 1) break;
  if (r < 0) continue;
  const id = notif.readBigUInt64LE(0);
  const nr = notif.readInt32LE(16);
  if (mode === 'noop') {
    native.notifSend(LISTENER, id, 0n, 0, 0);
    continue;
  }
  const a = nr === NR_STAT || nr === NR_NEWFSTATAT ? serveStat(id, notif.readUInt32LE(8), nr) : undefined;
  if (a === undefined) native.notifSend(LISTENER, id, 0n, 0, CONTINUE);
  else native.notifSend(LISTENER, id, 0n, a, 0);
}
