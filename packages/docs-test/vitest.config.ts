import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'docs-test',
    include: ['src/**/*.test.ts'],
    // The outside apps are installed once in beforeAll; examples then run one after another.
    hookTimeout: 900_000,
    testTimeout: 120_000,
  },
});
