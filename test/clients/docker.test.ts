// The client tier for Docker: scenarios under stockade (and runc, in the full run) on a private dockerd.
import { dockerMissing, startDocker } from './docker';
import { clientSuite, VM_SHIM_TTY } from './suite';

clientSuite({ name: 'docker', missing: dockerMissing, start: startDocker, vmLacks: { tty: VM_SHIM_TTY } });
