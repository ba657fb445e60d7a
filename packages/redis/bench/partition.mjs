// begin → frozen with one instance partitioned from Redis, against the lease TTL (default timings).
// `pnpm --filter @quiesce/redis bench:partition`. The runner is in the testkit.
import { benchPartition } from '@quiesce/testkit/store-bench';
import { target } from './target.mjs';

await benchPartition(target);
