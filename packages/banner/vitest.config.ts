import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'banner',
    include: ['test/**/*.test.ts'],
  },
});
