import { createRequire } from 'node:module';
import { defineProject } from 'vitest/config';
import { busyMachine } from '../../vitest.shared.js';

const require = createRequire(import.meta.url);

export default defineProject({
  resolve: {
    // Node resolves `graphql` (no exports map) to its CommonJS entry for everyone: Nest, Yoga and
    // this package. Vite would pick the `module` entry for our sources, and two copies of graphql
    // mean two GraphQLError classes. Resolve it as Node does.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    ...busyMachine,
    name: 'nestjs',
    include: ['test/**/*.test.ts'],
  },
});
