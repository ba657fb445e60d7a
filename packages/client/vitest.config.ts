import { createRequire } from 'node:module';
import { defineProject } from 'vitest/config';
import { busyMachine } from '../../vitest.shared.js';

const require = createRequire(import.meta.url);

export default defineProject({
  // Yoga loads graphql's CommonJS entry, as Node does; the schema built in the tests must use that
  // same copy, not the `module` entry vite prefers, or graphql sees two realms.
  resolve: {
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    ...busyMachine,
    name: 'client',
    include: ['test/**/*.test.ts'],
  },
});
