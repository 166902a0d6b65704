// Rules that keep a process from making a file setuid or setgid: for a writer whose files land as someone else's (do --bind SRC:rw, and the file server of a vm's share of it).
import type { OciSeccomp, OciSyscall } from './types';

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const EPERM = 1;
const ENOSYS = 38;

/** Every call that takes a file mode, and which argument holds it. */
const MODE_ARGS: readonly (readonly [name: string, index: number])[] = [
  // chmod of a file the writer owns (through an id-mapped bind: a file of the caller's) may set S_ISUID.
  ['chmod', 1], ['fchmod', 1], ['fchmodat', 2], ['fchmodat2', 2],
  // A file created with S_ISUID in its mode keeps it (the umask takes only what it names).
  ['creat', 1], ['open', 2], ['openat', 3],
  // A regular file made by mknod needs no CAP_MKNOD.
  ['mknod', 1], ['mknodat', 2],
];

/**
 * EPERM for any of those calls whose mode has S_ISUID or S_ISGID, one rule per bit (a rule's
 * conditions all hold, or it does not match); openat2 carries its mode in a struct a filter cannot
 * read: ENOSYS, on which its callers fall back to openat. First in a profile: the compiler takes
 * the first rule that matches, and the allow list's chmod would come before them.
 * The kernel strips both bits itself when a writer without CAP_FSETID writes or chowns such a file.
 */
export const NO_SETID_RULES: readonly OciSyscall[] = [
  ...MODE_ARGS.flatMap(([name, index]) => [S_ISUID, S_ISGID].map((bit): OciSyscall => ({
    names: [name], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, args: [{ index, value: bit, valueTwo: bit, op: 'SCMP_CMP_MASKED_EQ' }],
  }))),
  { names: ['openat2'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
];

/** `profile` with NO_SETID_RULES before its own rules. */
export function withNoSetid(profile: OciSeccomp): OciSeccomp {
  return { ...profile, syscalls: [...NO_SETID_RULES, ...(profile.syscalls ?? [])] };
}

/** A profile that allows everything but NO_SETID_RULES (a file server's: it keeps its own filter too). */
export const NO_SETID_PROFILE: OciSeccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [...NO_SETID_RULES] };
