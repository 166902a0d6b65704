// The client tier for Docker: scenarios under stockade (and runc, in the full run) on a private dockerd.
import { dockerMissing, startDocker } from './docker';
import { clientSuite } from './suite';

clientSuite({ name: 'docker', missing: dockerMissing, start: startDocker });
