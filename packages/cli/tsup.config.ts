import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

export default defineConfig({
  // bin.ts keeps its hashbang; package.json points `bin` at dist/bin.js (ESM).
  entry: ['src/index.ts', 'src/bin.ts'],
  format: ['esm', 'cjs'],
  // `pnpm run build:js` (the demo's path) skips declarations: an app does not need them.
  dts: process.env.npm_lifecycle_event !== 'build:js' && { entry: 'src/index.ts' },
  clean: true,
  sourcemap: true,
  target: 'node22',
  define: { __VERSION__: JSON.stringify(version) },
});
