import { fileURLToPath } from 'node:url';
import { defineProject } from 'vitest/config';
import { busyMachine } from '../../vitest.shared.js';

export default defineProject({
  // testkit depends on core, so core cannot list it as a dependency (turbo rejects the cycle):
  // its tests reach the fakes through an alias instead.
  resolve: {
    alias: { '@quiesce/testkit': fileURLToPath(new URL('../testkit/src/index.ts', import.meta.url)) },
  },
  test: {
    ...busyMachine,
    name: 'core',
    include: ['test/**/*.test.ts'],
  },
});
