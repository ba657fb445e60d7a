import { defineProject } from 'vitest/config';
import { busyMachine } from '../../vitest.shared.js';

export default defineProject({
  test: {
    ...busyMachine,
    name: 'testkit',
    include: ['test/**/*.test.ts'],
  },
});
