import { type QuiesceEngine, QuiesceError } from '@quiesce/core';
import type { QuiesceYogaOptions } from './useQuiesce.js';

/** Validate the plugin's options at `useQuiesce()`, naming the failing field. */
export function checkOptions(engine: QuiesceEngine, options: QuiesceYogaOptions): void {
  if (!engine || typeof engine.decide !== 'function' || typeof engine.track !== 'function') {
    throw new QuiesceError(
      'INVALID_INPUT',
      'useQuiesce(engine): engine must be a QuiesceEngine from createQuiesce()',
      {
        field: 'engine',
      },
    );
  }
  if (options === null || typeof options !== 'object') {
    throw new QuiesceError('INVALID_INPUT', 'useQuiesce(engine, options): options must be an object', {
      field: 'options',
    });
  }
  for (const legacy of ['bypassHeader', 'bypassCookie'] as const) {
    if (legacy in options) {
      throw new QuiesceError(
        'INVALID_INPUT',
        `useQuiesce: options.${legacy} is read from the engine: give createQuiesce({ bypass: { ${legacy === 'bypassHeader' ? 'header' : 'cookie'} } })`,
        { field: legacy },
      );
    }
  }
  for (const k of ['principal', 'ip', 'intentName'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'function') {
      throw new QuiesceError('INVALID_INPUT', `useQuiesce: options.${k} must be a function`, { field: k });
    }
  }
  const header = options.idempotencyKeyHeader;
  if (header !== undefined && (typeof header !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header))) {
    throw new QuiesceError(
      'INVALID_INPUT',
      `useQuiesce: options.idempotencyKeyHeader must be a header name, got ${JSON.stringify(header)}`,
      { field: 'idempotencyKeyHeader' },
    );
  }
  for (const k of ['requireIdempotencyKey', 'reportReads'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'boolean') {
      throw new QuiesceError('INVALID_INPUT', `useQuiesce: options.${k} must be a boolean`, { field: k });
    }
  }
}
