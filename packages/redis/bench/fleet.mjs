// Fleet benchmark on Redis: N instances (several per process) on one store, a controller beginning
// and ending windows. `pnpm --filter @quiesce/redis bench:fleet` (sizes: QUIESCE_FLEET_SIZES, default
// 8,64,256,1000; windows per size: QUIESCE_FLEET_WINDOWS, default 3). The runner is in the testkit.
import { benchFleet } from '@quiesce/testkit/store-bench';
import { target } from './target.mjs';

await benchFleet(target);
