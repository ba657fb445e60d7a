import { defineProject } from 'vitest/config';
import { busyMachine } from '../../vitest.shared.js';

export default defineProject({
  test: {
    ...busyMachine,
    name: 'openfeature',
    include: ['test/**/*.test.ts'],
  },
});
