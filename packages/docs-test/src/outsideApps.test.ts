import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closure, type Packed, prepareApp } from './outsideApps.js';
import { extractExamples, linksOutsidePackage, quiesceImports } from './readmes.js';

const dir = mkdtempSync(join(tmpdir(), 'quiesce-docs-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('outside apps', () => {
  it('an unreachable registry gives a skip with the reason, not a failure', async () => {
    const template = join(dir, 'template');
    mkdirSync(template);
    // A package npm cannot have cached, from a registry that refuses connections.
    writeFileSync(
      join(template, 'package.json'),
      JSON.stringify({ name: 'x', private: true, dependencies: { 'quiesce-docs-test-not-cached': '1.0.0' } }),
    );
    writeFileSync(join(template, 'tsconfig.json'), '{}');
    const saved = { ...process.env };
    process.env.npm_config_registry = 'http://127.0.0.1:9/';
    process.env.npm_config_fetch_retries = '0';
    process.env.npm_config_cache = join(dir, 'npm-cache');
    try {
      const result = await prepareApp('express-esm', template, [], join(dir, 'cache'));
      expect(result).toMatchObject({ skipped: expect.stringMatching(/npm could not reach the registry/) });
    } finally {
      process.env = saved;
    }
  }, 120_000);

  it('installs an example import together with its @quiesce dependencies and peers', () => {
    const p = (name: string, quiesceDeps: string[]): [string, Packed] => [
      name,
      { name, dir, tarball: '', quiesceDeps, files: [], subpaths: ['.'] },
    ];
    const packed = new Map([
      p('@quiesce/core', []),
      p('@quiesce/express', ['@quiesce/core']),
      p('@quiesce/cli', ['@quiesce/postgres']),
      p('@quiesce/postgres', ['@quiesce/core']),
    ]);
    expect(closure(['@quiesce/cli'], packed)).toEqual(['@quiesce/cli', '@quiesce/core', '@quiesce/postgres']);
    expect(() => closure(['@quiesce/nope'], packed)).toThrow(/not a packable workspace package/);
  });
});

describe('README parsing', () => {
  it('finds ts/js blocks (indented ones too), keys them by heading, and reads the not-run marker', () => {
    const md = [
      '# pkg',
      '## Setup',
      '```ts',
      "import { x } from '@quiesce/core/http';",
      'app.listen(3000);',
      '```',
      '```sh',
      'pnpm add x',
      '```',
      '```ts',
      '// not run: a fragment',
      'foo();',
      '```',
      '- item',
      '  ```ts',
      "  import { Module } from '@nestjs/common';",
      '  ```',
    ].join('\n');
    const found = extractExamples('packages/x/README.md', md);
    expect(found.map((e) => [e.key, e.app, e.serves, e.notRun ?? null])).toEqual([
      ['packages/x/README.md#Setup', 'express-esm', true, null],
      ['packages/x/README.md#Setup (2)', 'express-esm', false, 'a fragment'],
      ['packages/x/README.md#Setup (3)', 'nest-cjs', false, null],
    ]);
    expect(found[2]!.code).toBe("import { Module } from '@nestjs/common';\n");
    expect(quiesceImports(found[0]!.code)).toEqual(['@quiesce/core']);
  });

  it('flags relative links that leave the package', () => {
    expect(
      linksOutsidePackage('[a](../../README.md) [b](https://x.dev) [c](#opts) [d](./docs/a.md) [e](/etc/x)'),
    ).toEqual(['../../README.md', '/etc/x']);
  });

  it('this package reads its own template apps', () => {
    for (const app of ['express-esm', 'nest-cjs', 'yoga-esm']) {
      const manifest = JSON.parse(
        readFileSync(new URL(`../apps/${app}/package.json`, import.meta.url), 'utf8'),
      );
      expect(manifest.private).toBe(true);
      expect(manifest.dependencies.typescript).toBeDefined();
    }
  });
});
