import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'openfeature',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
