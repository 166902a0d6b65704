// The seccomp filter a vm share's file server runs under when a share is id-mapped: no file made setuid or setgid.
import { compile, parseSeccomp } from '../seccomp';
import { NO_SETID_PROFILE } from '../seccomp/no-setid';

let hex: string | undefined;

/** NO_SETID_PROFILE compiled for this machine, as stockade-seccomp-exec takes it (hex of struct sock_filter[]). */
export function shareServerFilter(): string {
  hex ??= compile(parseSeccomp(NO_SETID_PROFILE, 'share server filter')).program.toString('hex');
  return hex;
}
