import { createRequire } from 'node:module';
import { defineProject } from 'vitest/config';
import { busyMachine } from '../../vitest.shared.js';

const require = createRequire(import.meta.url);

export default defineProject({
  // Yoga runs outside vite and loads graphql 16 the way Node does (its CommonJS entry); tests that
  // build schemas with graphql's classes must get that same copy, not the `module` entry vite
  // prefers, or graphql sees two realms.
  resolve: {
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    ...busyMachine,
    name: 'graphql-yoga',
    include: ['test/**/*.test.ts'],
  },
});
