// The client tier for podman: scenarios under stockade (and runc, in the full run) on private storage.
import { existsSync } from 'node:fs';
import { podmanMissing, startPodman } from './podman';
import { clientSuite } from './suite';

clientSuite({
  name: 'podman', missing: podmanMissing, start: startPodman,
  lacks: {
    // podman 4.3's top lists /proc in the mount namespace of the container's pid, which at vm is
    // the keeper's: the host's (every host process); it asks the runtime for no pids.
    'top@stockade-vm': 'podman 4.3 top reads /proc in the mount namespace of the container\'s pid, at vm the keeper\'s (the host\'s), not the guest\'s',
    // Names on a podman network come from aardvark-dns (netavark) or CNI's dnsname plugin.
    ...(existsSync('/usr/libexec/podman/aardvark-dns') || existsSync('/usr/lib/cni/dnsname') ? {} : {
      'network-dns': 'podman resolves no container names here: aardvark-dns is not installed (apt-get install aardvark-dns, with netavark) nor CNI\'s dnsname plugin',
    }),
  },
});
