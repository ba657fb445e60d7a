import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QuiesceRetryError } from '../src/quiesceRetryError.js';
import {
  decideRetry,
  parseRetryAfter,
  type RetryDecision,
  type RetryInput,
  resolveRetryPolicy,
} from '../src/retryPolicy.js';

/** Runs per property; CI runs the default, `QUIESCE_PROPERTY_RUNS=5000` for a deeper search. */
const RUNS = Number(process.env.QUIESCE_PROPERTY_RUNS ?? 500);

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

function headers(h: Record<string, string>) {
  const lower = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
  return { get: (name: string) => lower[name.toLowerCase()] ?? null };
}

function problem(endsAt: string | null, retryAfter = 5, detail = 'Upgrading the database') {
  return {
    type: 'https://quiesce.dev/problems/read-only-mode',
    title: 'Service is in read-only mode',
    status: 503,
    detail,
    code: 'READ_ONLY_MODE',
    windowId: 'w1',
    endsAt,
    retryAfter,
  };
}

const refusal = (ra: number, endsAt: string | null, extra: Record<string, string> = {}): RetryInput => ({
  status: 503,
  headers: headers({ 'retry-after': String(ra), ...extra }),
  body: problem(endsAt, ra),
  method: 'POST',
});

const policyArb = fc.record({
  maxAttempts: fc.integer({ min: 1, max: 20 }),
  budgetMs: fc.integer({ min: 0, max: 600_000 }),
  maxWaitMs: fc.integer({ min: 0, max: 120_000 }),
  jitterMs: fc.integer({ min: 0, max: 5_000 }),
  baseDelayMs: fc.integer({ min: 0, max: 5_000 }),
});

const methodArb = fc.constantFrom('GET', 'HEAD', 'PUT', 'DELETE', 'POST', 'PATCH', 'post', 'put');

/** Any answer a server might give: refusals (header, body-only, GraphQL), queued, plain statuses, network errors. */
const inputArb: fc.Arbitrary<RetryInput> = fc.oneof(
  fc
    .record({
      ra: fc.integer({ min: 0, max: 4000 }),
      endsIn: fc.option(fc.integer({ min: -600, max: 7200 })),
      method: methodArb,
      header: fc.boolean(),
    })
    .map(({ ra, endsIn, method, header }) => ({
      status: 503,
      headers: headers(header ? { 'retry-after': String(ra) } : {}),
      body: problem(endsIn === null ? null : new Date(T0 + endsIn * 1000).toISOString(), ra),
      method,
    })),
  fc.record({ ra: fc.integer({ min: 0, max: 4000 }), method: methodArb }).map(({ ra, method }) => ({
    status: 503,
    headers: headers({ 'retry-after': String(ra) }),
    body: {
      errors: [{ message: 'Paused', extensions: { code: 'READ_ONLY_MODE', retryAfter: ra, endsAt: null } }],
    },
    method,
  })),
  fc
    .record({
      status: fc.constantFrom(200, 201, 204, 400, 404, 408, 409, 422, 429, 500, 502, 503, 504),
      method: methodArb,
      key: fc.boolean(),
      ra: fc.option(fc.integer({ min: 0, max: 4000 })),
    })
    .map(({ status, method, key, ra }) => ({
      status,
      headers: headers(ra === null ? {} : { 'retry-after': String(ra) }),
      body: { type: 'about:blank', title: 'Unavailable', status, code: 'STORE_UNAVAILABLE' },
      method,
      idempotencyKey: key,
    })),
  fc
    .record({ method: methodArb, key: fc.boolean() })
    .map(({ method, key }) => ({ method, idempotencyKey: key })),
  fc.constant<RetryInput>({
    status: 202,
    headers: headers({}),
    body: { status: 'queued', code: 'WRITE_QUEUED', intentId: 'i1', idempotencyKey: 'k', statusUrl: '/q/i1' },
    method: 'POST',
  }),
);

const historyArb = fc.record({
  attempts: fc.integer({ min: 1, max: 25 }),
  elapsed: fc.integer({ min: 0, max: 700_000 }),
});

const SAFE = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);

describe('decideRetry: properties', () => {
  it('never waits past the cap or the budget, and never retries past the attempts', () => {
    fc.assert(
      fc.property(
        policyArb,
        inputArb,
        historyArb,
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (p, input, h, r) => {
          const policy = resolveRetryPolicy(p);
          const now = T0 + h.elapsed;
          const d = decideRetry(input, { attempts: h.attempts, startedAt: T0 }, policy, now, r);
          if (d.action !== 'retry') return;
          expect(d.delayMs).toBeGreaterThanOrEqual(0);
          expect(d.delayMs).toBeLessThanOrEqual(policy.maxWaitMs);
          expect(h.elapsed + d.delayMs).toBeLessThanOrEqual(policy.budgetMs);
          expect(h.attempts).toBeLessThan(policy.maxAttempts);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('retries a non-quiesce failure only when the request is safe to repeat; a refusal whatever the method', () => {
    fc.assert(
      fc.property(inputArb, historyArb, (input, h) => {
        const d = decideRetry(
          input,
          { attempts: 1, startedAt: T0 },
          resolveRetryPolicy({ budgetMs: 10_000_000 }),
          T0 + (h.elapsed % 1000),
          0.5,
        );
        const quiesce = JSON.stringify(input.body ?? '').includes('READ_ONLY_MODE');
        const safe = SAFE.has((input.method ?? 'POST').toUpperCase()) || input.idempotencyKey === true;
        if (!quiesce && !safe) expect(['return', 'queued']).toContain(d.action);
        if (quiesce) expect(['retry', 'give-up']).toContain(d.action);
      }),
      { numRuns: RUNS },
    );
  });

  it('never retries a 503 that is not READ_ONLY_MODE on a POST without Idempotency-Key', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('POST', 'PATCH'),
        fc.option(fc.integer({ min: 0, max: 100 })),
        fc.constantFrom<unknown>(
          undefined,
          null,
          'oops',
          { code: 'STORE_UNAVAILABLE' },
          { errors: [{ message: 'x' }] },
        ),
        historyArb,
        (method, ra, body, h) => {
          const d = decideRetry(
            { status: 503, headers: headers(ra === null ? {} : { 'retry-after': String(ra) }), body, method },
            { attempts: h.attempts, startedAt: T0 },
            resolveRetryPolicy(),
            T0 + h.elapsed,
            0.3,
          );
          expect(d).toEqual({ action: 'return' });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('returns the intent of a queued write and never retries it', () => {
    fc.assert(
      fc.property(historyArb, fc.boolean(), (h, graphql) => {
        const ext = {
          code: 'WRITE_QUEUED',
          intentId: 'int-7',
          idempotencyKey: 'k7',
          statusUrl: '/quiesce/intents/int-7',
          windowId: 'w1',
          endsAt: null,
        };
        const body = graphql
          ? { data: { createNote: null }, errors: [{ message: 'queued', extensions: ext }] }
          : { status: 'queued', ...ext };
        const d = decideRetry(
          { status: 202, headers: headers({}), body, method: 'POST' },
          { attempts: h.attempts, startedAt: T0 },
          resolveRetryPolicy(),
          T0 + h.elapsed,
          0.1,
        );
        expect(d).toEqual({
          action: 'queued',
          intent: {
            code: 'WRITE_QUEUED',
            intentId: 'int-7',
            idempotencyKey: 'k7',
            statusUrl: '/quiesce/intents/int-7',
            windowId: 'w1',
            endsAt: null,
          },
        });
      }),
      { numRuns: RUNS },
    );
  });

  it("honours Retry-After: the wait is the server's, plus jitter below jitterMs, within cap and budget", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3600 }),
        fc.integer({ min: 0, max: 5000 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        fc.integer({ min: 0, max: 100_000 }),
        (ra, jitterMs, r, maxWaitMs) => {
          const policy = resolveRetryPolicy({ jitterMs, maxWaitMs, budgetMs: 10_000_000, maxAttempts: 99 });
          const d = decideRetry(refusal(ra, null), { attempts: 1, startedAt: T0 }, policy, T0, r) as Extract<
            RetryDecision,
            { action: 'retry' }
          >;
          expect(d.action).toBe('retry');
          expect(d.delayMs).toBe(Math.min(maxWaitMs, ra * 1000 + r * jitterMs));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('reads Retry-After as an HTTP-date against the server Date the same as the seconds it spells', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 86_400 }),
        fc.integer({ min: -3_600_000, max: 3_600_000 }),
        (s, skew) => {
          const serverNow = T0;
          const at = new Date(serverNow + s * 1000).toUTCString();
          // The client clock is off by `skew`: with the server's Date header the answer does not move.
          expect(parseRetryAfter(at, serverNow + skew, new Date(serverNow).toUTCString())).toBe(s * 1000);
          expect(parseRetryAfter(String(s), serverNow + skew)).toBe(s * 1000);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("gives up at once, with the window's message and end, when the window outlasts the budget", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1_000, max: 600_000 }),
        fc.integer({ min: 1, max: 3_600_000 }),
        fc.integer({ min: 0, max: 60_000 }),
        (budgetMs, beyond, elapsed) => {
          fc.pre(elapsed < budgetMs);
          const endsAt = new Date(T0 + budgetMs + beyond).toISOString();
          const d = decideRetry(
            { ...refusal(1, endsAt), body: problem(endsAt, 1, 'Moving to the new cluster') },
            { attempts: 1, startedAt: T0 },
            resolveRetryPolicy({ budgetMs }),
            T0 + elapsed,
            0.5,
          );
          expect(d.action).toBe('give-up');
          const error = (d as Extract<RetryDecision, { action: 'give-up' }>).error;
          expect(error).toBeInstanceOf(QuiesceRetryError);
          expect(error).toMatchObject({
            reason: 'window-outlasts-budget',
            detail: 'Moving to the new cluster',
            endsAt,
            windowId: 'w1',
            status: 503,
            attempts: 1,
          });
          expect(error.message).toContain('Moving to the new cluster');
          expect(error.message).toContain(endsAt);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('a simulated window: lands the write exactly once when the window ends within the budget, else gives up; never sleeps past the budget', () => {
    fc.assert(
      fc.property(
        fc.record({
          windowMs: fc.integer({ min: 0, max: 120_000 }),
          serverJitterS: fc.integer({ min: 0, max: 5 }),
          capS: fc.integer({ min: 1, max: 60 }),
          budgetMs: fc.integer({ min: 1_000, max: 300_000 }),
          maxWaitMs: fc.integer({ min: 500, max: 60_000 }),
          seed: fc.integer(),
        }),
        ({ windowMs, serverJitterS, capS, budgetMs, maxWaitMs, seed }) => {
          const policy = resolveRetryPolicy({ budgetMs, maxWaitMs, maxAttempts: 100_000 });
          let rnd = seed >>> 0;
          const random = () => {
            rnd = (Math.imul(rnd, 1664525) + 1013904223) >>> 0;
            return rnd / 2 ** 32;
          };
          const end = T0 + windowMs;
          let now = T0;
          let requestsAfterEnd = 0;
          for (let attempts = 1; ; attempts++) {
            const open = now < end;
            if (!open) requestsAfterEnd++;
            const ra = Math.min(
              capS,
              Math.max(0, Math.ceil((end - now) / 1000)) + Math.floor(random() * (serverJitterS + 1)),
            );
            const input: RetryInput = open
              ? refusal(ra, new Date(end).toISOString(), { date: new Date(now).toUTCString() })
              : { status: 201, method: 'POST' };
            const d = decideRetry(input, { attempts, startedAt: T0 }, policy, now, random());
            if (d.action === 'return') {
              expect(open).toBe(false);
              expect(windowMs).toBeLessThanOrEqual(budgetMs);
              expect(requestsAfterEnd).toBe(1); // applied exactly once
              break;
            }
            if (d.action === 'give-up') {
              expect(windowMs + 1000).toBeGreaterThan(budgetMs); // (the Date header rounds to the second)
              break;
            }
            expect(d.action).toBe('retry');
            now += (d as Extract<RetryDecision, { action: 'retry' }>).delayMs;
            expect(now - T0).toBeLessThanOrEqual(budgetMs);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('decideRetry: examples', () => {
  const policy = resolveRetryPolicy({ jitterMs: 0 });

  it('uses the body retryAfter when the header is hidden (a cross-origin response without Access-Control-Expose-Headers)', () => {
    const d = decideRetry(
      { status: 503, headers: headers({}), body: problem(null, 7), method: 'POST' },
      { attempts: 1, startedAt: T0 },
      policy,
      T0,
      0,
    );
    expect(d).toMatchObject({ action: 'retry', delayMs: 7000 });
  });

  it('backs off with full jitter when the server says nothing, for a GET', () => {
    const p = resolveRetryPolicy({ baseDelayMs: 100, maxWaitMs: 1_000 });
    const at = (attempts: number, r: number) =>
      decideRetry({ status: 502, method: 'GET' }, { attempts, startedAt: T0 }, p, T0, r);
    expect(at(1, 0.5)).toMatchObject({ delayMs: 50 });
    expect(at(3, 0.5)).toMatchObject({ delayMs: 200 });
    expect(at(7, 0.999)).toMatchObject({ delayMs: 999 });
  });

  it('reads a GraphQL refusal, and not one whose operation returned data', () => {
    const body = {
      errors: [
        {
          message: 'Read-only for ten minutes',
          extensions: {
            code: 'READ_ONLY_MODE',
            windowId: 'w',
            endsAt: null,
            retryAfter: 3,
            fields: ['Mutation.a'],
          },
        },
      ],
    };
    expect(decideRetry({ status: 503, body }, { attempts: 1, startedAt: T0 }, policy, T0, 0)).toMatchObject({
      action: 'retry',
      delayMs: 3000,
      refusal: { message: 'Read-only for ten minutes', fields: ['Mutation.a'] },
    });
    expect(
      decideRetry(
        { status: 200, body: { ...body, data: { a: 1 } } },
        { attempts: 1, startedAt: T0 },
        policy,
        T0,
        0,
      ),
    ).toEqual({ action: 'return' });
  });

  it('gives up when attempts run out, with the refusal details', () => {
    const d = decideRetry(refusal(1, null), { attempts: 8, startedAt: T0 }, policy, T0 + 1000, 0);
    expect(d).toMatchObject({
      action: 'give-up',
      error: { reason: 'attempts-exhausted', attempts: 8, detail: 'Upgrading the database' },
    });
  });

  it('cuts the last wait to the budget left instead of giving up early', () => {
    const p = resolveRetryPolicy({ budgetMs: 10_000, jitterMs: 0 });
    expect(decideRetry(refusal(8, null), { attempts: 2, startedAt: T0 }, p, T0 + 7_000, 0)).toMatchObject({
      action: 'retry',
      delayMs: 3_000,
    });
    expect(decideRetry(refusal(8, null), { attempts: 3, startedAt: T0 }, p, T0 + 10_000, 0)).toMatchObject({
      action: 'give-up',
      error: { reason: 'budget-exhausted' },
    });
  });

  it('rejects bad options naming the field', () => {
    expect(() => resolveRetryPolicy({ budgetMs: -1 })).toThrow(/budgetMs/);
    expect(() => resolveRetryPolicy({ maxAttempts: 0 })).toThrow(/maxAttempts/);
    expect(() => resolveRetryPolicy({ jitterMs: Number.NaN })).toThrow(/jitterMs/);
    expect(() => resolveRetryPolicy({ retryStatuses: ['503'] as never })).toThrow(/retryStatuses/);
  });

  it('ignores a malformed Retry-After', () => {
    expect(parseRetryAfter('soon', T0)).toBeUndefined();
    expect(parseRetryAfter('-5', T0)).toBeUndefined();
    expect(parseRetryAfter('2030', T0)).toBe(2_030_000);
  });
});
