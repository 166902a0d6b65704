// The `stockade` program as bin/stockade and the light entry start it: the bundled CLI, run with its code cache.
import { join } from 'node:path';
import { runBundle } from '../loader/bundle-loader';

runBundle(join(__dirname, 'stockade-main.js'), join(__dirname, 'stockade-main.cache'), true);
