import { defineConfig } from 'tsup';

// An app, not a library: ESM only, no declarations. esbuild emits no decorator metadata, so the
// Nest parts inject by explicit token.
export default defineConfig({
  entry: ['src/index.ts', 'src/main.ts'],
  format: ['esm'],
  clean: true,
  sourcemap: true,
  target: 'node22',
});
