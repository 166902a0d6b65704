// The client tier for podman: scenarios under stockade (and runc, in the full run) on private storage.
import { podmanMissing, startPodman } from './podman';
import { clientSuite } from './suite';

clientSuite({ name: 'podman', missing: podmanMissing, start: startPodman });
