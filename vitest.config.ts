import { defineConfig } from 'vitest/config';

// One vitest project per package/app: each folder's own vitest.config.ts.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*'],
    // After the summary: every skipped test and every loud SKIPPED notice, listed again.
    reporters: ['default', './scripts/skipSummaryReporter.ts'],
  },
});
