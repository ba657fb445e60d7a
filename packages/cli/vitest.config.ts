import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'cli',
    // expect.poll gives up after 4 s, not vitest's 1 s: the suite must hold with both cores busy.
    expect: { poll: { timeout: 4000 } },
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
