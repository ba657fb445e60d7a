import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'pg-boss',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/globalSetup.ts'],
  },
});
