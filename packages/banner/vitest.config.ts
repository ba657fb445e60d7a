import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'banner',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
