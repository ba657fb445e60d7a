// Propagation bench: how long from `begin()` returning until every one of N child-process instances
// refuses writes, and until the window is `frozen` (every instance acknowledged, nothing in flight).
// Runs on the built package (dist) against the real server: `pnpm --filter @quiesce/redis bench`.

import { availableParallelism, loadavg } from 'node:os';
import { createQuiesce, silentLogger } from '@quiesce/core';
import { createRedisStore } from '@quiesce/redis';
import { Redis } from 'ioredis';
import { now, spawnInstance } from '../test/fixtures/harness.mjs';

const url = process.env.QUIESCE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `qrs_bench_${process.pid}:`;
const WINDOWS = Number(process.env.BENCH_WINDOWS ?? 100);
const WARMUP = 3;
const SIZES = [4, 8];

const admin = new Redis(url);
const version = /redis_version:(\S+)/.exec(await admin.info('server'))[1];

async function run(n) {
  const store = createRedisStore({ url, prefix });
  const controller = createQuiesce({
    store,
    participant: false,
    instanceId: 'operator',
    soakMs: 0,
    logger: silentLogger,
  });
  await controller.start();
  const instances = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      spawnInstance({ id: `bench-${n}-${i}`, prefix, url, engine: { soakMs: 0 } }),
    ),
  );
  const allRefuse = [];
  const perInstance = [];
  const frozen = [];
  for (let w = 0; w < WARMUP + WINDOWS; w++) {
    const window = await controller.begin({ reason: 'bench', message: 'bench window' });
    const begun = now();
    const reports = await Promise.all(
      instances.map((h) =>
        h.waitForReport((r) => r.refusing && r.windowId === window.id, 10_000, 'refusing'),
      ),
    );
    await controller.waitForPhase('frozen', { timeoutMs: 10_000 });
    const frozenAt = now();
    if (w >= WARMUP) {
      // An instance may hear the change before begin() returns to the operator: that is 0, not negative.
      const lat = reports.map((r) => Math.max(0, r.at - begun));
      perInstance.push(...lat);
      allRefuse.push(Math.max(...lat));
      frozen.push(frozenAt - begun);
    }
    await controller.end();
    await Promise.all(
      instances.map((h) => h.waitForReport((r) => !r.refusing && r.windowId === window.id, 10_000, 'thawed')),
    );
    await controller.waitForPhase('closed', { timeoutMs: 10_000 });
  }
  await Promise.all(instances.map((h) => h.close()));
  await controller.close();
  await store.close();
  return { n, allRefuse, perInstance, frozen };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const ms = (x) => x.toFixed(2).padStart(8);

try {
  const results = [];
  for (const n of SIZES) results.push(await run(n));
  console.log(
    `\n@quiesce/redis — propagation on loopback (Redis ${version}), ${WINDOWS} windows per row, times in ms; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${availableParallelism()} cores`,
  );
  console.log(
    'instances | begin→all refuse  p50      p99      max | one instance p50      p99 | begin→frozen  p50      p99      max',
  );
  for (const r of results) {
    console.log(
      `${String(r.n).padStart(9)} |           ${ms(pct(r.allRefuse, 50))} ${ms(pct(r.allRefuse, 99))} ${ms(Math.max(...r.allRefuse))} |        ${ms(pct(r.perInstance, 50))} ${ms(pct(r.perInstance, 99))} |      ${ms(pct(r.frozen, 50))} ${ms(pct(r.frozen, 99))} ${ms(Math.max(...r.frozen))}`,
    );
  }
  const [a, b] = results;
  console.log(
    `ratio ${b.n}/${a.n} (p50): all refuse ×${(pct(b.allRefuse, 50) / pct(a.allRefuse, 50)).toFixed(2)}, frozen ×${(pct(b.frozen, 50) / pct(a.frozen, 50)).toFixed(2)}`,
  );
  console.log(
    '(aim: begin→all refuse p99 < 50 ms on loopback; frozen also waits for the acknowledgements the controller polls every 50 ms)\n',
  );
} finally {
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length) await admin.del(...keys);
  admin.disconnect();
}
