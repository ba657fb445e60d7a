import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The outside app an example runs in (see DOCS-CONVENTION.md / this package's README). */
export type AppName = 'express-esm' | 'nest-cjs' | 'yoga-esm';

export interface Example {
  /** README path relative to the repository root, with `/`. */
  readme: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The nearest heading above the block. */
  heading: string;
  /** `<readme>#<heading>`, with ` (2)`, ` (3)` … for later blocks under the same heading. */
  key: string;
  lang: 'ts' | 'js';
  code: string;
  /** Set when the block's first line is `// not run: <reason>`. */
  notRun?: string;
  app: AppName;
  /** Does it serve (calls `.listen(`)? Serving examples are stopped by the test; others must exit 0. */
  serves: boolean;
}

const RUN_LANGS = new Set(['ts', 'typescript', 'js', 'javascript']);
const NOT_RUN = /^\s*\/\/\s*not run:\s*(.*\S)\s*$/;

/** The root README and the README of every workspace package that is not private. */
export function findReadmes(root: string): string[] {
  const out = ['README.md'];
  const packagesDir = join(root, 'packages');
  for (const dir of readdirSync(packagesDir).sort()) {
    const manifest = join(packagesDir, dir, 'package.json');
    const readme = join(packagesDir, dir, 'README.md');
    if (!existsSync(manifest) || !existsSync(readme)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { private?: boolean };
    if (pkg.private) continue;
    out.push(`packages/${dir}/README.md`);
  }
  return out;
}

/** The app an example needs, from what it imports. */
export function appFor(code: string): AppName {
  if (/from\s+['"]@nestjs\//.test(code)) return 'nest-cjs';
  if (/from\s+['"]graphql-yoga['"]/.test(code)) return 'yoga-esm';
  return 'express-esm';
}

/** Every ```ts / ```js block of a README (fences may be indented, e.g. inside a list item). */
export function extractExamples(readme: string, text: string): Example[] {
  const lines = text.split('\n');
  const examples: Example[] = [];
  const perHeading = new Map<string, number>();
  let heading = '(top)';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const h = /^#{1,6}\s+(.*\S)\s*$/.exec(line);
    if (h) {
      heading = h[1]!.replace(/`/g, '');
      continue;
    }
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(line);
    if (!open) continue;
    const indent = open[1]!.length;
    const fence = open[2]!;
    const lang = open[3]!.toLowerCase();
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j]!;
      if (l.trim().startsWith(fence[0]!.repeat(fence.length)) && l.trim().replace(/[`~]/g, '') === '') break;
      body.push(l.slice(Math.min(indent, l.length - l.trimStart().length)));
    }
    if (RUN_LANGS.has(lang)) {
      const count = (perHeading.get(heading) ?? 0) + 1;
      perHeading.set(heading, count);
      const code = `${body.join('\n')}\n`;
      const firstLine = body.find((l) => l.trim() !== '') ?? '';
      const notRun = NOT_RUN.exec(firstLine)?.[1];
      examples.push({
        readme,
        line: i + 1,
        heading,
        key: `${readme}#${heading}${count > 1 ? ` (${count})` : ''}`,
        lang: lang.startsWith('t') ? 'ts' : 'js',
        code,
        ...(notRun ? { notRun } : {}),
        app: appFor(code),
        serves: /\.listen\(/.test(code),
      });
    }
    i = j;
  }
  return examples;
}

/** The `@quiesce/*` packages (and `@quiesce/x/sub` subpaths) an example imports. */
export function quiesceImports(code: string): string[] {
  const names = new Set<string>();
  for (const m of code.matchAll(/(?:from\s+|import\s*\(?\s*)['"](@quiesce\/[\w.-]+)(?:\/[\w./-]+)?['"]/g)) {
    names.add(m[1]!);
  }
  return [...names];
}

/**
 * Relative links (`[text](path)`) in a package README that leave the package directory: on npm
 * they point nowhere.
 */
export function linksOutsidePackage(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z+.-]*:/i.test(target) || target.startsWith('#')) continue;
    if (target.startsWith('/') || target.startsWith('..')) out.push(target);
  }
  return out;
}

/** Relative links of a package README, for checking that the target is published. */
export function relativeLinks(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1]!.split('#')[0]!;
    if (!target || /^[a-z][a-z+.-]*:/i.test(target)) continue;
    out.push(target);
  }
  return out;
}
