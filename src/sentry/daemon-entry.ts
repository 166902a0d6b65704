// The sentry process as the runtime starts it (dist/stockade-sentryd-entry.js): the bundled
// sentry, run with its code cache, as src/cli/entry.ts runs the CLI.
import { join } from 'node:path';
import { runBundle } from '../loader/bundle-loader';

runBundle(join(__dirname, 'stockade-sentryd.js'), join(__dirname, 'stockade-sentryd.cache'), true);
