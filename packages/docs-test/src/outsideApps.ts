import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AppName } from './readmes.js';

const run = promisify(execFile);

export interface Packed {
  name: string;
  dir: string;
  tarball: string;
  /** `@quiesce/*` packages it depends on or expects as peers. */
  quiesceDeps: string[];
  /** Paths inside the tarball. */
  files: string[];
  /** Subpaths of its `exports` map (`.`, `./http`, …), without `./package.json` and non-JS assets. */
  subpaths: string[];
}

interface Manifest {
  name: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  exports?: Record<string, unknown>;
}

/** Packs every non-private workspace package (`pnpm pack`, so `workspace:` ranges are rewritten). */
export async function packWorkspace(root: string, dest: string): Promise<Map<string, Packed>> {
  mkdirSync(dest, { recursive: true });
  const packed = new Map<string, Packed>();
  const packagesDir = join(root, 'packages');
  for (const entry of readdirSync(packagesDir).sort()) {
    const dir = join(packagesDir, entry);
    const manifestPath = join(dir, 'package.json');
    if (!existsSync(manifestPath)) continue;
    const pkg = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
    if (pkg.private) continue;
    if (!existsSync(join(dir, 'dist'))) {
      throw new Error(`${pkg.name} has no dist/: build it first (pnpm build, or pnpm test, which builds)`);
    }
    const { stdout } = await run('pnpm', ['pack', '--pack-destination', dest, '--json'], {
      cwd: dir,
      maxBuffer: 16 * 1024 * 1024,
    });
    type PackInfo = { filename: string; files: Array<{ path: string }> };
    const parsed = JSON.parse(stdout) as PackInfo | PackInfo[];
    const info = Array.isArray(parsed) ? parsed[0]! : parsed;
    const filename = info.filename;
    const quiesceDeps = Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies }).filter((d) =>
      d.startsWith('@quiesce/'),
    );
    const subpaths = Object.keys(pkg.exports ?? { '.': null }).filter(
      (s) => s !== './package.json' && /^\.(\/[\w-]+)*$/.test(s),
    );
    packed.set(pkg.name, {
      name: pkg.name,
      dir,
      tarball: filename.startsWith('/') ? filename : join(dest, filename),
      quiesceDeps,
      files: info.files.map((f) => f.path),
      subpaths,
    });
  }
  return packed;
}

/** The packages to install for these imports: them and their `@quiesce/*` dependencies and peers. */
export function closure(names: Iterable<string>, packed: Map<string, Packed>): string[] {
  const out = new Set<string>();
  const visit = (name: string) => {
    if (out.has(name)) return;
    const p = packed.get(name);
    if (!p) throw new Error(`an example imports ${name}, which is not a packable workspace package`);
    out.add(name);
    for (const d of p.quiesceDeps) if (packed.has(d)) visit(d);
  };
  for (const n of names) visit(n);
  return [...out].sort();
}

export type Prepared = { dir: string; cached: boolean; installSeconds: number } | { skipped: string };

const NETWORK = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network|socket hang up/i;

/**
 * An outside app: the template in `apps/<name>` plus the tarballs, installed with npm. Cached under
 * `cacheRoot` by a hash of the template, the tarballs and the Node major, so a second run with
 * unchanged packages installs nothing.
 */
export async function prepareApp(
  name: AppName,
  templateDir: string,
  tarballs: Packed[],
  cacheRoot: string,
): Promise<Prepared> {
  const hash = createHash('sha256');
  hash.update(process.versions.node.split('.')[0]!);
  for (const f of ['package.json', 'tsconfig.json']) hash.update(readFileSync(join(templateDir, f)));
  for (const t of tarballs) {
    hash.update(t.name);
    hash.update(readFileSync(t.tarball));
  }
  const key = hash.digest('hex').slice(0, 16);
  const dir = join(cacheRoot, `${name}-${key}`);
  if (existsSync(join(dir, '.installed'))) return { dir, cached: true, installSeconds: 0 };

  mkdirSync(cacheRoot, { recursive: true });
  const staging = mkdtempSync(join(cacheRoot, `.${name}-`));
  const started = performance.now();
  try {
    cpSync(templateDir, staging, { recursive: true });
    mkdirSync(join(staging, 'tarballs'));
    const manifest = JSON.parse(readFileSync(join(staging, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    for (const t of tarballs) {
      const file = t.tarball.split('/').pop()!;
      cpSync(t.tarball, join(staging, 'tarballs', file));
      manifest.dependencies[t.name] = `file:./tarballs/${file}`;
    }
    writeFileSync(join(staging, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    try {
      await run(
        'npm',
        ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', '--ignore-scripts'],
        { cwd: staging, maxBuffer: 64 * 1024 * 1024, timeout: 600_000 },
      );
    } catch (error) {
      const text = `${(error as { stderr?: string }).stderr ?? ''}${(error as Error).message}`;
      if (NETWORK.test(text)) return { skipped: `npm could not reach the registry: ${firstLines(text)}` };
      throw new Error(`npm install of the ${name} app failed:\n${firstLines(text, 30)}`);
    }
    writeFileSync(join(staging, '.installed'), `${new Date().toISOString()}\n`);
    // Another run may have finished the same install meanwhile: keep theirs.
    if (existsSync(dir)) rmSync(staging, { recursive: true, force: true });
    else renameSync(staging, dir);
    for (const old of readdirSync(cacheRoot)) {
      if (old.startsWith(`${name}-`) && old !== `${name}-${key}`) {
        rmSync(join(cacheRoot, old), { recursive: true, force: true });
      }
    }
    return { dir, cached: false, installSeconds: (performance.now() - started) / 1000 };
  } finally {
    if (existsSync(staging)) rmSync(staging, { recursive: true, force: true });
  }
}

function firstLines(text: string, n = 6): string {
  return text.split('\n').slice(0, n).join('\n');
}

export interface Compiled {
  /** Output JS per example id. */
  outFile: (id: string) => string;
  /** tsc diagnostics per example id (empty: compiled cleanly). */
  diagnostics: Map<string, string[]>;
  /** Diagnostics in no example's file (tsconfig problems). */
  other: string[];
}

/**
 * Writes each program to `<app>/runs/<run>/src/<id>/main.<ts|js>` and compiles them all with the
 * app's own `tsc` in one go (so each app's type-checking costs one start-up).
 */
export async function compileExamples(
  appDir: string,
  runId: string,
  programs: Array<{ id: string; lang: 'ts' | 'js'; code: string }>,
): Promise<Compiled> {
  const runDir = join(appDir, 'runs', runId);
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(join(runDir, 'src'), { recursive: true });
  for (const p of programs) {
    mkdirSync(join(runDir, 'src', p.id), { recursive: true });
    writeFileSync(join(runDir, 'src', p.id, `main.${p.lang}`), p.code);
  }
  writeFileSync(
    join(runDir, 'tsconfig.json'),
    JSON.stringify({
      extends: '../../tsconfig.json',
      compilerOptions: { rootDir: 'src', outDir: 'out', allowJs: true, checkJs: false, noEmitOnError: false },
      include: ['src'],
    }),
  );
  const diagnostics = new Map<string, string[]>(programs.map((p) => [p.id, []]));
  const other: string[] = [];
  try {
    await run(
      process.execPath,
      [join(appDir, 'node_modules/typescript/bin/tsc'), '-p', runDir, '--pretty', 'false'],
      {
        cwd: runDir,
        maxBuffer: 64 * 1024 * 1024,
      },
    );
  } catch (error) {
    const out = (error as { stdout?: string }).stdout ?? String(error);
    let current: string[] = other;
    for (const line of out.split('\n')) {
      if (!line.trim()) continue;
      const m = /^src\/([^/]+)\/main\.[tj]s\(/.exec(line);
      if (m) current = diagnostics.get(m[1]!) ?? other;
      else if (/^\S/.test(line)) current = other;
      current.push(line);
    }
  }
  return { outFile: (id) => join(runDir, 'out', id, 'main.js'), diagnostics, other };
}
