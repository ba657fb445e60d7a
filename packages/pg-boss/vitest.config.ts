import { defineProject } from 'vitest/config';
import { busyMachine } from '../../vitest.shared.js';

export default defineProject({
  test: {
    ...busyMachine,
    name: 'pg-boss',
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/globalSetup.ts'],
  },
});
