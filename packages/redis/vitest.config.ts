import { defineProject } from 'vitest/config';
import { busyMachine } from '../../vitest.shared.js';

export default defineProject({
  test: {
    ...busyMachine,
    name: 'redis',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
