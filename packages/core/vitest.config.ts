import { fileURLToPath } from 'node:url';
import { defineProject } from 'vitest/config';

export default defineProject({
  // testkit depends on core, so core cannot list it as a dependency (turbo rejects the cycle):
  // its tests reach the fakes through an alias instead.
  resolve: {
    alias: { '@quiesce/testkit': fileURLToPath(new URL('../testkit/src/index.ts', import.meta.url)) },
  },
  test: {
    name: 'core',
    // expect.poll gives up after 4 s, not vitest's 1 s: the suite must hold with both cores busy.
    expect: { poll: { timeout: 4000 } },
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
