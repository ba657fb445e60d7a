import { createRequire } from 'node:module';
import { defineProject } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineProject({
  // Yoga runs outside vite and loads graphql 16 the way Node does (its CommonJS entry); tests that
  // build schemas with graphql's classes must get that same copy, not the `module` entry vite
  // prefers, or graphql sees two realms.
  resolve: {
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    name: 'graphql-yoga',
    // expect.poll gives up after 4 s, not vitest's 1 s: the suite must hold with both cores busy.
    expect: { poll: { timeout: 4000 } },
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
