// Limits every vitest project shares. The suite must hold with both cores busy (`pnpm test:stress`),
// so the limits are hang guards, not speed checks: a test that finishes in 50 ms idle can take
// seconds under load (CREATE DATABASE, a Nest boot, a child process). Nothing asserts on time.
//   testTimeout / hookTimeout  how long before vitest calls a test or hook hung (vitest: 5 s / 10 s)
//   expect.poll.timeout        how long expect.poll keeps asking (vitest: 1 s); it returns as soon
//                              as the expectation holds, so only a failing poll waits this long
export const busyMachine = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
  expect: { poll: { timeout: 15_000 } },
} as const;
