import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileStore, createQuiesce } from '@quiesce/core';
import { expect, it } from 'vitest';
import { EXIT } from '../src/index.js';
import { cli } from './helpers.js';

// fencing (#12): `quiesce end --force` closes a window stuck in its backfill, audited.
it('end --force closes a window stuck in the backfill; a plain end says there is nothing to end', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'quiesce-force-'));
  const path = join(dir, 'state.json');
  const app = createQuiesce({ store: createFileStore(path), instanceId: 'app', soakMs: 0, heartbeatMs: 50 });
  let release: (() => void) | undefined;
  app.handle('stuck', () => new Promise<void>((r) => (release = r)));
  try {
    await app.begin({ reason: 'r', message: 'm' });
    await app.waitForPhase('frozen', { timeoutMs: 5000 });
    await app.enqueue({ surface: 'custom', name: 'stuck', idempotencyKey: '1' }, 1);
    await app.end();
    await app.waitForPhase('backfilling', { timeoutMs: 5000 });
    const plain = await cli(['end', '--store', `file:${path}`, '--no-wait']);
    expect(plain.code).not.toBe(EXIT.ok);
    const forced = await cli([
      'end',
      '--store',
      `file:${path}`,
      '--force',
      '--actor',
      'ops',
      '--reason',
      'replay hangs',
    ]);
    expect(forced.stderr).toBe('');
    expect(forced.code).toBe(EXIT.ok);
    expect(forced.stdout).toMatch(/closed by force \(it was backfilling\)/);
    // The record says who forced it and from which phase (the audit entry is the ending process's).
    const status = await cli(['status', '--store', `file:${path}`, '--json']);
    expect(status.json.state.window).toMatchObject({
      phase: 'closed',
      checklist: { forced: { by: 'ops', fromPhase: 'backfilling' } },
    });
  } finally {
    release?.();
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
});
