import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileStore } from '@quiesce/core';
import { type InstanceScenarioBackend, runCrashTrials, serviceAvailable } from '@quiesce/testkit';
import { createInstanceSpawner } from '@quiesce/testkit/instance-harness';
import { describe } from 'vitest';

// The file store's crash trials (the queue and the effects are on PostgreSQL, the state in a file).
const ok = await serviceAvailable('postgres', '@quiesce/postgres crash trials on the file store');
const spawnInstance = createInstanceSpawner({
  instance: new URL('./fixtures/fileInstance.mjs', import.meta.url),
  dist: new URL('../dist/index.js', import.meta.url),
});

describe.skipIf(!ok)('file store', () => {
  runCrashTrials('file', async (): Promise<InstanceScenarioBackend> => {
    const dir = await mkdtemp(join(tmpdir(), 'quiesce-file-crash-'));
    const path = join(dir, 'state.json');
    const unsupported = () => Promise.reject(new Error('not used by the crash trials'));
    return {
      spawn: (id, engine, _proxyPort, extra) => spawnInstance({ ...extra, id, engine, path }),
      openStore: () => createFileStore({ path }),
      proxy: unsupported,
      terminate: unsupported,
      dispose: () => rm(dir, { recursive: true, force: true }),
    };
  });
});
