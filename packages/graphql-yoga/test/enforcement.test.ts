import { createBypassToken, type Operation } from '@quiesce/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, harness } from './fixtures.js';

/* The Yoga cases of issue #11. */

let h: Harness | undefined;
afterEach(async () => {
  await h?.engine.close();
  h = undefined;
});

describe('one predicate for a tracked write (#11)', () => {
  it('an allowed mutation does not hold the drain; a blocked one does', async () => {
    h = await harness();
    const tracked: string[] = [];
    const track = h.engine.track.bind(h.engine);
    h.engine.track = (op: Operation) => {
      tracked.push(op.name);
      return track(op);
    };
    await h.gql('mutation { signIn(user: "ann") }');
    expect(tracked).toEqual([]);
    await h.gql('mutation { deleteOrder(id: 1) }');
    expect(tracked).toEqual(['mutation deleteOrder']);
  });
});

describe('bypass names come from the engine (#11)', () => {
  it("reads the engine's bypass header, not a default of its own", async () => {
    const secret = 'bypass-secret-0123456789';
    h = await harness({ engine: { bypass: { secret, header: 'x-ops' } } });
    await h.begin();
    const token = createBypassToken(secret, { sub: 'ops', expiresInMs: 60_000 });
    const refused = await h.gql('mutation { deleteOrder(id: 1) }', undefined, { 'x-quiesce-bypass': token });
    expect(refused.status).toBe(503);
    const bypassed = await h.gql('mutation { deleteOrder(id: 2) }', undefined, { 'x-ops': token });
    expect(bypassed.status).toBe(200);
    expect(bypassed.body.errors).toBeUndefined();
  });
});
