import { createRequire } from 'node:module';
import { defineProject } from 'vitest/config';
import { busyMachine } from '../../vitest.shared.js';

const require = createRequire(import.meta.url);

export default defineProject({
  resolve: {
    // One graphql for Yoga, Nest and the plugin: resolve it as Node does (its CommonJS entry).
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    ...busyMachine,
    name: 'demo',
    include: ['test/**/*.test.ts'],
    testTimeout: 90_000,
  },
});
