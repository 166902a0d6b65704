// What `stockade help CMD` and `stockade CMD --help` print: every option of every command, with an example.
// (`do` keeps its own text beside its code, in do.ts.)

const CREATE_OPTIONS = `  -b, --bundle DIR       the bundle: config.json and the root file system it names (default: .)
  --pid-file FILE        write the container's init pid there once it exists
  --console-socket SOCK  with process.terminal, send the pty master to this unix socket (SCM_RIGHTS)
  --no-pivot             enter the root with MS_MOVE and chroot, not pivot_root (a ramdisk root)
  --no-new-keyring       keep the caller's session keyring instead of a new one named after the id
  --preserve-fds N       pass fds 3 .. 3+N-1 on to the container's process`;

export const HELP: Readonly<Record<string, string>> = {
  create: `stockade create [OPTIONS] ID

Creates a container from a bundle and leaves it waiting at its process's execve: \`start\` runs it.
The id must be unique under --root.

Options:
${CREATE_OPTIONS}

Example:
  stockade create --bundle /srv/bundles/web web1 && stockade start web1`,

  start: `stockade start ID

Runs the process of a created container (its startContainer and poststart hooks included).

Example:
  stockade start web1`,

  run: `stockade run [OPTIONS] ID
stockade run --image REF [IMAGE OPTIONS] [ID] [-- CMD [ARG...]]

Creates and starts a container, then, unless --detach, waits for it: stdio passes through,
signals sent to stockade reach the container, and the exit status is its process's. The
container is deleted when it ends, unless --keep. With --image, the bundle is made from an image
(pulled into the store first when it is not there).

Options:
${CREATE_OPTIONS}
  -d, --detach           return once the process runs, leaving the container
  --keep                 leave the stopped container for \`delete\` instead of deleting it

Image options:
  --image REF            the image (HOST/NAME:TAG, docker://..., oci:DIR[:TAG], docker-archive:FILE)
  -e, --env KEY=VALUE    add or replace a variable of the image's (repeatable)
  --platform OS/ARCH     which platform of a multi-platform image (default: this host's)
  --creds USER:PASSWORD  registry credentials
  --plain-http           talk to the registry over HTTP
  --max-layer-size BYTES refuse a layer larger than this

Examples:
  stockade run --bundle /srv/bundles/job job1
  stockade run --image docker.io/library/busybox:latest -- echo hi`,

  pull: `stockade pull [OPTIONS] REF

Pulls an image into the store under --root: HOST/NAME:TAG, docker://..., oci:DIR[:TAG] or
docker-archive:FILE.

Options:
  --platform OS/ARCH[/VARIANT]  which platform of a multi-platform image (default: this host's)
  --max-layer-size BYTES        refuse a layer larger than this
  --creds USER:PASSWORD         registry credentials
  --plain-http                  talk to the registry over HTTP

Example:
  stockade pull docker.io/library/alpine:3.20`,

  images: `stockade images [OPTIONS]

Lists the images in the store.

Options:
  -f, --format table|json  table (default) or JSON
  -q, --quiet              ids only

Example:
  stockade images --format json`,

  'vm-template': `stockade vm-template [OPTIONS]

Builds the vm level's template for a guest of this size: a guest booted once and saved, which
vm containers are restored from instead of booting (docs/design/vm-templates.md). The 256 MiB,
1 vCPU one is built on a container's first need otherwise; a container of another size boots
cold until its template is built here. A cached template that checks out is used as it is.

Options:
  --memory MIB  guest memory (default 256)
  --cpus N      vCPUs (default 1)
  --prune       instead: remove the templates this host would no longer restore (another QEMU,
                guest or kernel made them) that no VM runs from; a build does this too
  --json        the template's key, directory and timings (with --prune: what was removed) as JSON

Examples:
  stockade vm-template --memory 512
  stockade vm-template --prune`,

  rmi: `stockade rmi REF|ID...

Removes images from the store.

Example:
  stockade rmi docker.io/library/alpine:3.20`,

  exec: `stockade exec [OPTIONS] ID [COMMAND ARGS...]

Runs another process in a running container, in its namespaces, cgroups, and at its isolation
level (under the container's own sentry at the sentry level).

Options:
  -p, --process FILE        the process as JSON (config.json's process), instead of COMMAND ARGS
  -t, --tty                 a pty for the process (with --detach, sent to --console-socket)
  --console-socket SOCK     send the pty master to this unix socket (with --tty --detach)
  -d, --detach              return once the process runs
  --pid-file FILE           write the process's pid there
  --cwd DIR                 its working directory, in the container
  -e, --env K=V             add or replace a variable (repeatable)
  -u, --user UID[:GID]      its identity (default: the container's process's)
  -g, --additional-gids GID supplementary groups (repeatable)
  -c, --cap CAP             add a capability (repeatable)
  --no-new-privs            set no_new_privs for it
  --preserve-fds N          pass fds 3 .. 3+N-1 on
  --process-label L         an SELinux label (accepted; this build applies none)
  --apparmor P              an AppArmor profile (accepted; this build applies none)
  --ignore-paused           exec into a paused container (the process stays frozen with it)
  --cgroup [CTRL[,...]:]PATH  put the process in a sub-cgroup of the container's (repeatable)

Example:
  stockade exec -t web1 /bin/sh`,

  state: `stockade state ID

Prints the container's state as the runtime spec defines it (JSON: id, pid, status, bundle,
annotations). Status is worked out from the kernel, not trusted from disk.

Example:
  stockade state web1`,

  list: `stockade list [OPTIONS]

Lists the containers under --root (and deletes what a killed \`stockade do\` left there).

Options:
  -f, --format table|json  table (default) or JSON
  -q, --quiet              ids only

Example:
  stockade list --format json`,

  kill: `stockade kill [OPTIONS] ID [SIGNAL]

Sends a signal (default SIGTERM; a name, SIGNAME or number) to the container's init.

Options:
  -a, --all   to every process of the container

Example:
  stockade kill web1 KILL`,

  delete: `stockade delete [OPTIONS] ID

Deletes a stopped (or created) container: its state, cgroups and mounts; poststop hooks run.

Options:
  -f, --force   kill a running container first

Example:
  stockade delete --force web1`,

  pause: `stockade pause ID

Freezes every process of the container (the cgroup freezer).

Example:
  stockade pause web1`,

  resume: `stockade resume ID

Thaws a paused container.

Example:
  stockade resume web1`,

  update: `stockade update [OPTIONS] ID

Changes a running container's limits, as runc update does.

Options:
  -r, --resources FILE|-   linux.resources as JSON, from a file or stdin; the flags below win
  --memory N               memory limit (bytes, or 64m, 1g; -1: none)
  --memory-swap N          memory plus swap limit
  --memory-reservation N   soft memory limit
  --kernel-memory N        kernel memory limit (cgroup v1 only)
  --kernel-memory-tcp N    kernel TCP buffer limit (cgroup v1 only)
  --cpu-shares N           relative CPU weight
  --cpu-quota N            CPU time per period, in microseconds
  --cpu-period N           the period, in microseconds
  --cpu-rt-runtime N       real-time CPU time per period
  --cpu-rt-period N        the real-time period
  --cpuset-cpus LIST       CPUs it may run on (0-3,6)
  --cpuset-mems LIST       memory nodes it may use
  --pids-limit N           processes and threads at most
  --blkio-weight N         relative block I/O weight (10-1000)
  --l3-cache-schema S      Intel RDT L3 schema (accepted; not applied by this build)
  --mem-bw-schema S        Intel RDT memory bandwidth schema (accepted; not applied by this build)

Example:
  stockade update --memory 512m --pids-limit 200 web1`,

  events: `stockade events [OPTIONS] ID

Streams the container's events as JSON lines, as runc does: its resource usage every interval,
and OOM kills as they happen.

Options:
  --stats          print the resource usage once and exit
  --interval DUR   how often to report the usage (default 5s)

Example:
  stockade events --stats web1`,

  ps: `stockade ps [OPTIONS] ID [PS OPTIONS]

Lists the container's processes: their pids (--format json), or ps(1)'s table for them.

Options:
  -f, --format table|json   table (default: ps -ef, or the PS OPTIONS given) or JSON

Example:
  stockade ps web1 -o pid,comm`,

  spec: `stockade spec [OPTIONS]

Writes a default config.json (Docker's default seccomp profile included) into the bundle.

Options:
  -b, --bundle DIR   where to write it (default: .)
  --rootless         a config for a container run by an unprivileged user (a user namespace)

Example:
  mkdir -p b/rootfs && stockade spec --bundle b`,

  features: `stockade features [OPTIONS]

Prints what this runtime supports (the runtime spec's features JSON), or with --syscalls what
every system call gets under the sentry.

Options:
  --syscalls               the sentry's answer to each system call
  --format table|json      for --syscalls (default: table)

Example:
  stockade features --syscalls --format json`,

  trace: `stockade trace ID

Streams each system call the sentry mediates for a sentry container, as one JSON line each,
until the container ends.

Example:
  stockade --isolation sentry run -d --bundle b c1 && stockade trace c1`,
};
