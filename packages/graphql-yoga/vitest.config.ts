import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'graphql-yoga',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
