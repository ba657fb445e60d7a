import { QuiesceError } from '@quiesce/core';
import type { QuiesceMiddlewareOptions } from './quiesce.js';

/** `quiesce(engine, options)`'s options, checked (a 400-style error naming the field) with their defaults. */
export function checkOptions(
  options: QuiesceMiddlewareOptions,
): QuiesceMiddlewareOptions & { inventory: boolean } {
  if (options === null || typeof options !== 'object') {
    throw new QuiesceError('INVALID_INPUT', 'quiesce(engine, options): options must be an object', {
      field: 'options',
    });
  }
  for (const legacy of ['bypassHeader', 'bypassCookie'] as const) {
    if (legacy in options) {
      throw new QuiesceError(
        'INVALID_INPUT',
        `quiesce(engine, options): ${legacy} is read from the engine: give createQuiesce({ bypass: { ${legacy === 'bypassHeader' ? 'header' : 'cookie'} } })`,
        { field: legacy },
      );
    }
  }
  const { principal, inventory = true } = options;
  if (principal !== undefined && typeof principal !== 'function') {
    throw new QuiesceError('INVALID_INPUT', 'quiesce(engine, options): principal must be a function', {
      field: 'principal',
    });
  }
  if (typeof inventory !== 'boolean') {
    throw new QuiesceError('INVALID_INPUT', 'quiesce(engine, options): inventory must be a boolean', {
      field: 'inventory',
    });
  }
  return { ...options, inventory };
}
