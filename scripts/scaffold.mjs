// One-off scaffold used to create package skeletons consistently. Kept for adding new packages:
//   node scripts/scaffold.mjs <name> "<description>" [subpath ...]
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';

const [name, description, ...subpaths] = process.argv.slice(2);
if (!name || !description) throw new Error('usage: scaffold.mjs <name> "<description>" [subpath ...]');
const dir = `packages/${name}`;
mkdirSync(`${dir}/src`, { recursive: true });
const entries = ['index', ...subpaths];
const cond = (e) => ({
  import: { types: `./dist/${e}.d.ts`, default: `./dist/${e}.js` },
  require: { types: `./dist/${e}.d.cts`, default: `./dist/${e}.cjs` },
});
const exports = { '.': cond('index') };
for (const s of subpaths) exports[`./${s}`] = cond(s);
exports['./package.json'] = './package.json';
const pkg = {
  name: `@quiesce/${name}`,
  version: '0.1.0',
  description,
  license: 'MIT',
  type: 'module',
  sideEffects: false,
  engines: { node: '>=22.12' },
  main: './dist/index.cjs',
  module: './dist/index.js',
  types: './dist/index.d.cts',
  exports,
  files: ['dist', 'README.md'],
  repository: { type: 'git', url: 'git+https://github.com/quiesce-dev/quiesce.git', directory: dir },
  scripts: {
    build: 'tsup',
    typecheck: 'tsc --noEmit',
    'check:package': 'publint --strict && attw --pack . --profile node16',
  },
};
if (!existsSync(`${dir}/package.json`))
  writeFileSync(`${dir}/package.json`, `${JSON.stringify(pkg, null, 2)}\n`);
writeFileSync(
  `${dir}/tsup.config.ts`,
  `import { defineConfig } from 'tsup';

export default defineConfig({
  entry: [${entries.map((e) => `'src/${e}.ts'`).join(', ')}],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node22',
});
`,
);
writeFileSync(
  `${dir}/tsconfig.json`,
  `{
  "extends": "../../tsconfig.base.json",
  "include": ["src", "test", "bench"]
}
`,
);
writeFileSync(
  `${dir}/vitest.config.ts`,
  `import { defineProject } from 'vitest/config';
import { busyMachine } from '../../vitest.shared.js';

export default defineProject({
  test: {
    ...busyMachine,
    name: '${name}',
    include: ['test/**/*.test.ts'],
  },
});
`,
);
