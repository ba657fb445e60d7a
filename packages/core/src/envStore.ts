import { z } from 'zod';
import { QuiesceError } from './errors.js';
import type { StateStore } from './store.js';
import { INITIAL_STATE, parseOrThrow, type QuiesceState } from './window.js';

const envSchema = z.object({
  QUIESCE_READ_ONLY: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return false;
      const s = v.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: `must be true/false/1/0, got "${v}"` });
      return z.NEVER;
    }),
  QUIESCE_MESSAGE: z.string().optional(),
  QUIESCE_REASON: z.string().optional(),
  QUIESCE_ENDS_AT: z
    .string()
    .optional()
    .refine((v) => v === undefined || v === '' || !Number.isNaN(Date.parse(v)), {
      message: 'must be an ISO 8601 date-time',
    }),
  QUIESCE_WINDOW_ID: z.string().optional(),
});

/**
 * A read-only store from environment variables: `QUIESCE_READ_ONLY=1`, `QUIESCE_MESSAGE`,
 * `QUIESCE_ENDS_AT` (ISO 8601), optional `QUIESCE_REASON`, `QUIESCE_WINDOW_ID`. The state is
 * fixed for the process's life; windows cannot be begun or ended through it.
 */
export function createEnvStore(env: Record<string, string | undefined> = process.env): StateStore {
  const v = parseOrThrow(envSchema, env, 'environment');
  const now = new Date().toISOString();
  const state: QuiesceState = v.QUIESCE_READ_ONLY
    ? {
        mode: 'read-only',
        version: 1,
        updatedAt: now,
        updatedBy: 'env',
        window: {
          id: v.QUIESCE_WINDOW_ID || 'env',
          reason: v.QUIESCE_REASON || 'maintenance',
          message: v.QUIESCE_MESSAGE || 'This service is in read-only mode for maintenance.',
          startsAt: now,
          endsAt: v.QUIESCE_ENDS_AT ? new Date(v.QUIESCE_ENDS_AT).toISOString() : null,
          phase: 'frozen',
          autoEnd: false,
          freezeVersion: 1,
          frozenAt: now,
          endedAt: null,
          closedAt: null,
          stragglers: [],
          notices: {},
          report: {},
        },
      }
    : INITIAL_STATE;
  return {
    kind: 'env',
    writable: false,
    async read() {
      return structuredClone(state);
    },
    async compareAndSet() {
      throw new QuiesceError(
        'STORE_READ_ONLY',
        'the env store is read-only: change QUIESCE_READ_ONLY and restart, or use a memory, file, postgres or redis store',
      );
    },
    subscribe() {
      return () => {};
    },
    async close() {},
  };
}
