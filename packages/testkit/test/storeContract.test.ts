import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileStore, createMemoryStore } from '@quiesce/core';
import { runStoreContractSuite } from '../src/storeContract.js';

runStoreContractSuite('memory', () => {
  // One process, one store: every handle is the same instance.
  const store = createMemoryStore();
  return { open: () => store };
});

runStoreContractSuite('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'quiesce-contract-'));
  const path = join(dir, 'state.json');
  return {
    open: () => createFileStore({ path, pollMs: 100 }),
    async corrupt(raw) {
      await writeFile(path, raw);
    },
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
});
