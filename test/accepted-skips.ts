// The machine limits a CI run may skip a test for, each with why it is acceptable. A skip whose
// reason matches none of these fails the run (test/ci/run-suite.ts): a broken build, a daemon that
// does not start or a loader that does not compile is a failure, never a reason to skip.
export interface AcceptedSkip {
  /** Matches the whole skip reason. */
  readonly reason: RegExp;
  /** Why this is a limit of the machine (or of a tool's installed version), not of stockade. */
  readonly why: string;
}

export const ACCEPTED_SKIPS: readonly AcceptedSkip[] = [
  { reason: /^containers need Linux$|^not Linux$/, why: 'stockade is a Linux runtime; elsewhere only the pure unit tests run' },
  { reason: /^creating namespaces and mounts as the tests do needs root$|^needs root\b.*$/, why: 'an unprivileged run cannot create namespaces, mounts or cgroups' },
  { reason: /^\S+ (?:not found|is dynamically linked): install busybox-static or set STOCKADE_TEST_BUSYBOX$/, why: 'container tests copy a static busybox into their root file systems' },
  { reason: /^(?:podman|conmon|dockerd|docker|containerd|ctr|containerd-shim-runc-v2|gcc|\w+) is not installed(?: \(.*\))?$/, why: 'a client or tool the machine does not have; its tier or test cannot run without it' },
  { reason: /^\S+ \([\w-]+\) is needed to .+$/, why: 'a tool (and the package that has it) the machine does not have' },
  { reason: /^this kernel offers no v1 controller \(every one is bound to cgroup2\)$/, why: 'a kernel or host with cgroup v2 alone cannot build a v1 layout' },
  { reason: /^cgroup2 here offers the memory controller$/, why: 'the case is a cgroup2 mount that lacks the controller; on a pure v2 host it has it' },
  { reason: /^this runtime holds every capability: none to ask for that it cannot grant$/, why: 'the case needs a runtime short of some capability; run as full root it has them all' },
  { reason: /^the attacker is built with gcc -static, which is not available$/, why: 'no static C toolchain on the machine' },
  { reason: /^no script\(1\)$|^no chroot\(8\)$/, why: 'a util-linux/coreutils tool the machine does not have' },
  { reason: /^x86_64 syscall numbers$|^these cases are written for x86_64, not \w+$|^x32 is an x86_64 ABI$|^no test loader for \w+$/, why: 'cases written for one architecture, on a machine of another' },
  { reason: /^seccomp user notification is missing here \(.*\)$/, why: 'a kernel older than 5.0, or one built without it' },
  { reason: /^no freezer: .*$/, why: 'a host with neither a v1 freezer hierarchy nor cgroup v2 cannot pause' },
  { reason: /^no cgroup2 file system here: .*$/, why: 'a kernel without cgroup v2, or a sandbox that cannot mount it' },
  { reason: /^cgroup v2 (?:memory|cpu|pids|io|cpuset|hugetlb|rdma|misc) controller is bound to a v1 hierarchy on this host$/, why: 'a controller serves one hierarchy at a time; a hybrid host keeps it on v1, and the v2 test cannot take it over' },
  { reason: /^no 2MB huge pages on this machine$/, why: 'an architecture or kernel without 2 MB huge pages' },
  { reason: /^no \w+ controller (?:in cgroup v2 )?on this host$/, why: 'a kernel built without the controller, or a host that does not mount it' },
  { reason: /^upstream runtime-spec schema not present \(.*\): nothing to cross-check against$/, why: 'upstream\'s schema is reference data kept outside the repository (../shared); the project\'s own schema is tested without it' },
  { reason: /^no non-loopback IPv4 address on this machine$/, why: 'a machine with no network interface but loopback cannot serve a registry off the loopback' },
  { reason: /^kernel\.kptr_restrict is 0 on this host: kernel addresses are shown to every reader$/, why: 'the host shows kernel addresses to everyone: there is nothing for the sentry to hide' },
  { reason: /^\/\S+ is missing \(install [\w-]+\)$/, why: 'QEMU or virtiofsd is not installed: the vm level cannot run (scripts/setup.sh installs qemu-system-x86)' },
  { reason: /^ctr has no networks of its own \(CNI is the CRI plugin's: test\/cri\)$/, why: 'ctr runs a container in the network namespace it is given; pod networks are the CRI plugin\'s, tested in test/cri' },
  { reason: /^podman resolves no container names here: aardvark-dns is not installed \(apt-get install aardvark-dns, with netavark\) nor CNI's dnsname plugin$/, why: 'the machine\'s podman network backend has no name server (a package it lacks); the scenario runs under Docker' },
  { reason: /^ctr 1\.6 has no task update command$/, why: 'the installed containerd client (Debian 12) cannot express the scenario' },
];

/** The accepted limit a skip reason falls under, or undefined. */
export function acceptedSkip(reason: string): AcceptedSkip | undefined {
  return ACCEPTED_SKIPS.find((a) => a.reason.test(reason));
}
