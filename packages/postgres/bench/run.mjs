// Propagation bench on PostgreSQL, on the built package (dist) against the real server:
// `pnpm --filter @quiesce/postgres bench` (windows: BENCH_WINDOWS, default 100). The runner is in the testkit.
import { benchPropagation } from '@quiesce/testkit/store-bench';
import { target } from './target.mjs';

await benchPropagation(target);
