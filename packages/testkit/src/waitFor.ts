import type { InstanceStatus, QuiesceEngine } from '@quiesce/core';
import { expect, TestRunner } from 'vitest';

export interface WaitForOptions {
  /**
   * Give up after this many ms. @default 80 % of the running test's timeout (4 s under vitest's
   * default 5 s), so the wait fails with its own message before vitest's "Test timed out"; 10 s
   * outside a test. Raise the test's timeout rather than this when a slow machine needs longer.
   */
  timeout?: number;
  /** ms between two checks. @default 20 */
  interval?: number;
}

/**
 * Wait until `check()` returns a truthy value without throwing, and return that value.
 *
 * A thin wrapper over vitest's `expect.poll` for tests that wait on something outside their
 * control (a listener firing, a process printing, a poller catching up): no fixed sleep, so a
 * busy machine only makes the test slower, never wrong. On timeout it fails with
 * `timed out after <ms> ms waiting for <what>` and the last value (or the last error thrown).
 *
 * Prefer a manual clock when the code under test takes one, and an explicit signal (a promise
 * the code resolves) when it can give one; `waitFor` is for everything else.
 *
 * @example
 * const line = await waitFor('the CLI to print the drain line', () => out.find((l) => l.includes('waiting on')));
 */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const testTimeout = TestRunner.getCurrentTest()?.timeout;
  const timeout = options.timeout ?? (testTimeout ? Math.floor(testTimeout * 0.8) : 10_000);
  let last: T | undefined;
  await expect
    .poll(
      async () => {
        last = await check();
        return last;
      },
      {
        timeout,
        interval: options.interval ?? 20,
        message: `timed out after ${timeout} ms waiting for ${what}`,
      },
    )
    .toBeTruthy();
  return last as NonNullable<T>;
}

/**
 * Wait until `count` heartbeats of `engine`'s own instance record (distinct `lastSeen`) matched
 * `test`. This is how a test says "several heartbeats went by and it still has not happened" (the
 * window is still freezing, a write is still in flight) without sleeping and hoping that was long
 * enough: assert the absence after this resolves. Needs a store with an instance registry (the
 * memory store has one) and a short `heartbeatMs` on the engine.
 */
export async function waitForHeartbeats(
  engine: QuiesceEngine,
  count: number,
  what: string,
  test: (self: InstanceStatus) => boolean,
  options: WaitForOptions = {},
): Promise<void> {
  const seen = new Set<number>();
  await waitFor(
    `${count} heartbeats ${what}`,
    async () => {
      const self = (await engine.status()).instances.find((i) => i.self);
      if (self && test(self)) seen.add(self.lastSeen);
      return seen.size >= count;
    },
    options,
  );
}
