// The command table: each command in its own file, loaded only when called.
import type { Command } from './context';

export const COMMANDS: Readonly<Record<string, () => Command>> = {
  create: () => (require('./create') as { command: Command }).command,
  start: () => (require('./start') as { command: Command }).command,
  run: () => (require('./run') as { command: Command }).command,
  exec: () => (require('./exec') as { command: Command }).command,
  state: () => (require('./state') as { command: Command }).command,
  list: () => (require('./list') as { command: Command }).command,
  kill: () => (require('./kill') as { command: Command }).command,
  delete: () => (require('./delete') as { command: Command }).command,
  pause: () => (require('./pause') as { command: Command }).command,
  resume: () => (require('./resume') as { command: Command }).command,
  update: () => (require('./update') as { command: Command }).command,
  events: () => (require('./events') as { command: Command }).command,
  ps: () => (require('./ps') as { command: Command }).command,
  spec: () => (require('./spec') as { command: Command }).command,
  features: () => (require('./features') as { command: Command }).command,
  do: () => (require('./do') as { command: Command }).command,
  trace: () => (require('./trace') as { command: Command }).command,
  pull: () => (require('./pull') as { command: Command }).command,
  images: () => (require('./images') as { command: Command }).command,
  rmi: () => (require('./rmi') as { command: Command }).command,
  'vm-template': () => (require('./vm-template') as { command: Command }).command,
};
