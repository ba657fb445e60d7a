import { createQuiesce, type StateStore, silentLogger } from '@quiesce/core';
import { describe, expect, it } from 'vitest';
import { measureFleet } from '../fixtures/fleet.mjs';

/** One backend for a fleet: fresh data (a schema, a key prefix) and how the fleet's children reach it. */
export interface FleetBackend {
  /** The child script: `serveStoreFleet` from `@quiesce/testkit/serve-fleet` on this package's store. */
  script: URL;
  /** Where the children's stores go (`connectionString` and `schema`, `url` and `prefix`…). */
  config: Record<string, unknown>;
  /** The controller's store handle, in the test process (like the CLI's). */
  openStore(): StateStore;
  /** Drop the backend's data. */
  dispose(): Promise<unknown>;
}

export interface FleetSuiteOptions {
  /** How the children connect, for the test's name (`a pool and one LISTEN connection each`). */
  connections?: string;
}

/**
 * A fleet of `QUIESCE_FLEET_N` engines (default 200) over two processes on one backend, one window
 * begun and ended by a controller in this process: no live instance is declared lost or fences
 * itself, the freeze and the thaw are confirmed by every instance, and the window closes only once
 * every instance writes again. `createBackend` is called once and must return a fresh backend.
 */
export function runFleetSuite(
  name: string,
  createBackend: () => FleetBackend | Promise<FleetBackend>,
  options: FleetSuiteOptions = {},
): void {
  const n = Number(process.env.QUIESCE_FLEET_N ?? 200);
  const how = options.connections ? ` (${options.connections})` : '';
  describe(`${name} fleet`, () => {
    it(`${n} instances over two processes${how}: no live instance declared lost; closed only once every instance writes again`, {
      timeout: 240_000,
    }, async () => {
      const backend = await createBackend();
      try {
        const figures = await measureFleet({
          script: backend.script,
          n,
          perProcess: Math.ceil(n / 2),
          config: { ...backend.config, engine: { soakMs: 0 } },
          controller: createQuiesce({
            store: backend.openStore(),
            participant: false,
            soakMs: 0,
            logger: silentLogger,
          }),
          // The idle load is the benchmark's figure: nothing here waits a stretch of time.
          idleMs: 0,
        });
        const [w] = figures.windows;
        expect(w!.declaredLost).toBe(0);
        expect(w!.selfFenced).toBe(0);
        expect(w!.freezeConfirmed).toBe(n);
        expect(w!.thawConfirmed).toBe(n);
        expect(w!.writingAfterClosed).toBe(0);
      } finally {
        await backend.dispose();
      }
    });
  });
}
