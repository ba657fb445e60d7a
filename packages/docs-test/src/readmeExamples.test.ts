import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { POSTGRES_URL, REDIS_URL, serviceAvailable, servicesRequired, uniqueName } from '@quiesce/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checks } from './checks.js';
import {
  type Compiled,
  closure,
  compileExamples,
  type Packed,
  packWorkspace,
  prepareApp,
} from './outsideApps.js';
import {
  type AppName,
  type Example,
  extractExamples,
  findReadmes,
  linksOutsidePackage,
  quiesceImports,
  relativeLinks,
} from './readmes.js';
import { runExample } from './runExample.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const HERE = fileURLToPath(new URL('../', import.meta.url));
const CACHE = join(HERE, 'node_modules/.cache/outside-apps');
const APPS: AppName[] = ['express-esm', 'nest-cjs', 'yoga-esm'];
const TOKEN = randomBytes(16).toString('hex');

const readmes = findReadmes(ROOT);
const examples: Example[] = readmes.flatMap((r) => extractExamples(r, readFileSync(join(ROOT, r), 'utf8')));
const runnable = examples.filter((e) => !e.notRun);
const idOf = (e: Example) =>
  `${e.readme.replace(/\/?README\.md$/, '').replace(/\W+/g, '_') || 'root'}_L${e.line}`;

interface AppState {
  dir?: string;
  skipped?: string;
  compiled?: Compiled;
  summary?: string;
}
const apps = new Map<AppName, AppState>();
let packed: Map<string, Packed> = new Map();
const runId = `${process.pid}-${Date.now().toString(36)}`;
const tmp = mkdtempSync(join(tmpdir(), 'quiesce-docs-'));

beforeAll(async () => {
  packed = await packWorkspace(ROOT, join(tmp, 'tarballs'));
  for (const app of APPS) {
    const mine = runnable.filter((e) => e.app === app);
    if (mine.length === 0) continue;
    // Every app gets core; then what its examples import, with their @quiesce dependencies and peers.
    const names = closure(['@quiesce/core', ...mine.flatMap((e) => quiesceImports(e.code))], packed);
    const prepared = await prepareApp(
      app,
      join(HERE, 'apps', app),
      names.map((n) => packed.get(n)!),
      CACHE,
    );
    if ('skipped' in prepared) {
      if (servicesRequired) throw new Error(`QUIESCE_REQUIRE_SERVICES=1 but ${prepared.skipped}`);
      console.warn(`\n*** SKIPPED: README examples in the ${app} app — ${prepared.skipped} ***\n`);
      apps.set(app, { skipped: prepared.skipped });
      continue;
    }
    // Every subpath of every installed package must resolve with types in this app's resolution mode.
    const imports = names.flatMap((n) =>
      packed
        .get(n)!
        .subpaths.filter((s) => !s.endsWith('.js'))
        .map((s) => (s === '.' ? n : `${n}/${s.slice(2)}`)),
    );
    const typesProgram = `${imports.map((m, i) => `import type * as m${i} from '${m}';`).join('\n')}\nexport type All = [${imports.map((_, i) => `typeof m${i}`).join(', ')}];\n`;
    const compileStarted = performance.now();
    const compiled = await compileExamples(prepared.dir, runId, [
      ...mine.map((e) => ({ id: idOf(e), lang: e.lang, code: e.code })),
      { id: 'subpaths', lang: 'ts', code: typesProgram },
    ]);
    apps.set(app, {
      dir: prepared.dir,
      compiled,
      summary: `${app}: ${names.join(', ')} — ${prepared.cached ? 'install cached' : `npm install ${prepared.installSeconds.toFixed(1)} s`}, tsc ${((performance.now() - compileStarted) / 1000).toFixed(1)} s`,
    });
    console.log(`[docs-test] ${apps.get(app)!.summary}`);
  }
}, 900_000);

afterAll(() => {
  for (const state of apps.values()) {
    if (state.dir) rmSync(join(state.dir, 'runs', runId), { recursive: true, force: true });
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe('README examples run as written in outside apps', () => {
  it('finds the README examples', () => {
    expect(readmes).toContain('README.md');
    expect(readmes).toContain('packages/core/README.md');
    expect(runnable.length).toBeGreaterThan(5);
  });

  for (const app of APPS) {
    it(`${app}: every @quiesce subpath resolves with types (${app === 'nest-cjs' ? 'node10' : 'nodenext'})`, (ctx) => {
      const state = apps.get(app);
      if (!state) return ctx.skip(`no example runs in ${app}`);
      if (state.skipped) return ctx.skip(state.skipped);
      expect(state.compiled!.other).toEqual([]);
      expect(state.compiled!.diagnostics.get('subpaths')).toEqual([]);
    });
  }

  for (const example of examples) {
    const name = `${example.key} (line ${example.line}, ${example.app})`;
    if (example.notRun) {
      it.skip(`${name} — not run: ${example.notRun}`, () => {});
      continue;
    }
    it(name, async (ctx) => {
      const state = apps.get(example.app)!;
      if (state.skipped) return ctx.skip(state.skipped);
      const id = idOf(example);
      const diagnostics = state.compiled!.diagnostics.get(id) ?? [];
      expect(diagnostics, `tsc in the ${example.app} app:\n${diagnostics.join('\n')}`).toEqual([]);

      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_ENV: 'production',
        QUIESCE_ADMIN_TOKEN: TOKEN,
      };
      let database: string | undefined;
      if (example.code.includes('DATABASE_URL')) {
        if (!(await serviceAvailable('postgres', `README example ${example.key}`)))
          return ctx.skip('no PostgreSQL');
        database = uniqueName('docs');
        const admin = new pg.Client({ connectionString: POSTGRES_URL });
        await admin.connect();
        await admin.query(`CREATE DATABASE ${database}`);
        await admin.end();
        const url = new URL(POSTGRES_URL);
        url.pathname = `/${database}`;
        env.DATABASE_URL = url.toString();
      }
      if (example.code.includes('REDIS_URL')) {
        if (!(await serviceAvailable('redis', `README example ${example.key}`))) return ctx.skip('no Redis');
        env.REDIS_URL = REDIS_URL;
      }
      const cwd = join(tmp, 'work', id);
      mkdirSync(cwd, { recursive: true });
      try {
        const started = await runExample(state.compiled!.outFile(id), { cwd, env, timeoutMs: 60_000 });
        if (started.kind === 'exited') {
          expect(example.serves, `it exited instead of serving:\n${started.output()}`).toBe(false);
          expect(started.code, `exit ${started.code ?? started.signal}; output:\n${started.output()}`).toBe(
            0,
          );
          return;
        }
        try {
          const check = checks[example.key];
          if (!check) {
            console.warn(
              `[docs-test] no claims check for ${example.key}: it starts and listens, nothing more is checked`,
            );
            return;
          }
          await check({ url: started.url, token: TOKEN, exited: started.exited }).catch((error: Error) => {
            error.message += `\n--- the example's output:\n${started.output()}`;
            throw error;
          });
        } finally {
          await started.stop();
        }
      } finally {
        if (database) {
          const admin = new pg.Client({ connectionString: POSTGRES_URL });
          await admin.connect();
          await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
          await admin.end();
        }
      }
    }, 120_000);
  }
});

describe('what the packages publish', () => {
  for (const readme of readmes.filter((r) => r.startsWith('packages/'))) {
    const dir = readme.replace(/\/README\.md$/, '');
    it(`${readme}: links stay inside the package and point at published files`, () => {
      const text = readFileSync(join(ROOT, readme), 'utf8');
      expect(linksOutsidePackage(text)).toEqual([]);
      const pkg = [...packed.values()].find((p) => p.dir.replace(/\/$/, '').endsWith(dir));
      if (!pkg) return;
      for (const target of relativeLinks(text)) {
        const path = target.replace(/^\.\//, '').replace(/\/$/, '');
        expect(
          pkg.files.some((f) => f === path || f.startsWith(`${path}/`)),
          `${readme} links ${target}, which is not in the published package`,
        ).toBe(true);
      }
    });
    it(`${dir}: LICENSE is in the published package`, () => {
      const pkg = [...packed.values()].find((p) => p.dir.replace(/\/$/, '').endsWith(dir));
      expect(pkg, `${dir} was not packed`).toBeDefined();
      expect(pkg!.files).toContain('LICENSE');
    });
  }
  it('the root has a LICENSE', () => {
    expect(existsSync(join(ROOT, 'LICENSE'))).toBe(true);
  });
});

describe('the quick start', () => {
  it('installs the pnpm version pinned in package.json without corepack, and names corepack as the alternative', () => {
    const pinned = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { packageManager: string }
    ).packageManager;
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const quickStart = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## Five-minute tour'));
    expect(quickStart).toContain(`npm install -g ${pinned}`);
    expect(quickStart).toMatch(/corepack enable/);
    expect(quickStart).toMatch(/pnpm install && pnpm demo/);
  });

  it('the demo path builds JavaScript only (no declarations to wait for)', () => {
    const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(root.scripts.demo).toMatch(/turbo run build:js --filter=@quiesce\/demo\.\.\./);
    // turbo skips a package without the script, and the demo would start without its dist.
    for (const base of ['packages', 'apps']) {
      for (const dir of readdirSync(join(ROOT, base))) {
        const manifest = join(ROOT, base, dir, 'package.json');
        if (!existsSync(manifest)) continue;
        const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as {
          name: string;
          scripts?: Record<string, string>;
        };
        if (pkg.scripts?.build)
          expect(pkg.scripts['build:js'], `${pkg.name} has build but no build:js`).toBeDefined();
      }
    }
  });
});
