// Prints the size of the browser bundle as shipped: minified, then minified + gzip and + brotli.
import { readFileSync } from 'node:fs';
import { brotliCompressSync, gzipSync } from 'node:zlib';

const file = 'dist/quiesce-banner.global.js';
const bytes = readFileSync(new URL(`../${file}`, import.meta.url));
console.table([
  {
    file,
    minified: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes).length,
  },
]);
