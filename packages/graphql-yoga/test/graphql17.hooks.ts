/**
 * Makes this process run graphql 17 wherever graphql is asked for: Yoga, envelop, graphql-tools and
 * the plugin all resolve `graphql` to the `graphql-17` alias, as in an app that installed graphql 17.
 * Imported first by the graphql 17 test file only (vitest runs each file in its own worker).
 */
import { createRequire, registerHooks } from 'node:module';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';

const anchor = new URL('../package.json', import.meta.url).href;
const require = createRequire(anchor);
const v16Dir = pathToFileURL(`${dirname(require.resolve('graphql/package.json'))}/`).href;

registerHooks({
  resolve(specifier, context, next) {
    if (specifier === 'graphql' || specifier.startsWith('graphql/')) {
      return next(`graphql-17${specifier.slice('graphql'.length)}`, { ...context, parentURL: anchor });
    }
    const resolved = next(specifier, context);
    if (resolved.url.startsWith(v16Dir)) {
      // A path vite resolved to graphql 16 (its alias in vitest.config.ts): the same entry of 17.
      const sub = resolved.url
        .slice(v16Dir.length)
        .replace(/(^|\/)index\.m?js$/, '')
        .replace(/\.m?js$/, '');
      return next(sub ? `graphql-17/${sub}` : 'graphql-17', { ...context, parentURL: anchor });
    }
    return resolved;
  },
});
