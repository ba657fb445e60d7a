import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileStore } from '../src/fileStore.js';
import { INITIAL_STATE, type QuiesceState } from '../src/window.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quiesce-file-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const next = (version: number): QuiesceState => ({
  ...INITIAL_STATE,
  version,
  mode: 'read-write',
  updatedAt: new Date().toISOString(),
});

describe('file store', () => {
  it('starts empty, writes atomically with compare-and-set', async () => {
    const path = join(dir, 'state.json');
    const store = createFileStore({ path });
    expect((await store.read()).version).toBe(0);
    expect((await store.compareAndSet(0, next(1))).ok).toBe(true);
    const stale = await store.compareAndSet(0, next(1));
    expect(stale).toMatchObject({ ok: false, current: { version: 1 } });
    expect(JSON.parse(await readFile(path, 'utf8')).version).toBe(1);
    await store.close();
  });

  it('a second store on the same file sees changes (watch)', async () => {
    const path = join(dir, 'state.json');
    const a = createFileStore({ path, pollMs: 50 });
    const b = createFileStore({ path, pollMs: 50 });
    const seen = new Promise<number>((resolve) => b.subscribe((s) => resolve(s.version)));
    await a.compareAndSet(0, next(1));
    expect(await seen).toBe(1);
    await a.close();
    await b.close();
  });

  it('a corrupt file keeps the last good state and reports the error', async () => {
    const path = join(dir, 'state.json');
    const store = createFileStore({ path, pollMs: 50 });
    await store.compareAndSet(0, next(1));
    const errors: Error[] = [];
    store.subscribe(
      () => {},
      (e) => errors.push(e),
    );
    await writeFile(path, '{"mode": "read-only", "version": "seven"}');
    const s = await store.read();
    expect(s.version).toBe(1);
    expect(store.lastError?.message).toMatch(/malformed state file/);
    expect(errors.length).toBeGreaterThan(0);
    // And a write is refused rather than overwriting what an operator may be fixing.
    await expect(store.compareAndSet(1, next(2))).rejects.toThrow(/malformed/);
    await store.close();
  });

  it('a half-written file (truncated JSON) keeps the last good state', async () => {
    const path = join(dir, 'state.json');
    const store = createFileStore({ path });
    await store.compareAndSet(0, next(1));
    const full = await readFile(path, 'utf8');
    await writeFile(path, full.slice(0, Math.floor(full.length / 2)));
    expect((await store.read()).version).toBe(1);
    expect(store.lastError?.message).toMatch(/malformed/);
    await writeFile(path, full.replace('"version": 1', '"version": 3'));
    expect((await store.read()).version).toBe(3);
    expect(store.lastError).toBeNull();
    await store.close();
  });

  it('a corrupt file with no good state before it is an error, not a silent default', async () => {
    const path = join(dir, 'state.json');
    await writeFile(path, 'not json');
    const store = createFileStore({ path });
    await expect(store.read()).rejects.toThrow(/malformed/);
    await store.close();
  });

  it('concurrent compare-and-set: exactly one writer wins per version', async () => {
    const path = join(dir, 'state.json');
    const stores = Array.from({ length: 5 }, () => createFileStore({ path }));
    const results = await Promise.all(stores.map((s) => s.compareAndSet(0, next(1))));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    await Promise.all(stores.map((s) => s.close()));
  });
});

describe('file store registry', () => {
  it('instances register beside the state file; acknowledgements never go backwards', async () => {
    const path = join(dir, 'state.json');
    const a = createFileStore({ path });
    const b = createFileStore({ path });
    const rec = {
      id: 'i1',
      startedAt: new Date().toISOString(),
      lastSeen: Date.now(),
      ackedVersion: 3,
      inFlight: 0,
    };
    await a.registry!.upsert(rec);
    await a.registry!.upsert({ ...rec, id: 'i2' });
    await b.registry!.upsert({ ...rec, ackedVersion: 2, inFlight: 1 });
    expect((await b.registry!.list()).find((r) => r.id === 'i1')).toMatchObject({
      ackedVersion: 3,
      inFlight: 0,
    });
    await a.registry!.remove('i2');
    expect((await a.registry!.list()).map((r) => r.id)).toEqual(['i1']);
    await a.close();
    await b.close();
  });
});
