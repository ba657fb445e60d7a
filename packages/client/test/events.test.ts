import { ApolloClient, ApolloLink, gql, HttpLink, InMemoryCache } from '@apollo/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { quiesceRetryLink } from '../src/apollo.js';
import { withQuiesceRetry } from '../src/index.js';
import { endOnFirstRefusal, type Servers, startServers } from './servers.js';

// Here the server tells clients to come back in about ten minutes (the window's announced end):
// only the event stream can bring the write back sooner, and the test ends the window at once.
let s: Servers;
beforeEach(async () => {
  s = await startServers({ floorSeconds: 0, capSeconds: 3600, jitterSeconds: 0 });
});
afterEach(async () => {
  await s.close();
});

const TEN_MINUTES = 10 * 60_000;
const LONG = { budgetMs: 2 * TEN_MINUTES, maxWaitMs: 2 * TEN_MINUTES, jitterMs: 50 };

describe('waiting on /quiesce/events instead of the whole Retry-After', () => {
  it('fetch wrapper: the write is sent again when the stream says the window ended', async () => {
    await s.begin(TEN_MINUTES);
    const end = endOnFirstRefusal(s);
    const started = Date.now();
    const f = withQuiesceRetry(fetch, { ...LONG, events: `${s.rest}/quiesce/events`, onRetry: end.onRetry });
    const res = await f(`${s.rest}/notes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'woken' }),
    });
    expect(res.status).toBe(201);
    expect(s.applied).toEqual(['note:woken']);
    expect(s.hit('POST /notes')).toBe(2);
    // The server's wait was about ten minutes; the write came back long before it.
    expect(end.refusals[0]).toBeGreaterThan(TEN_MINUTES - 60_000);
    expect(Date.now() - started).toBeLessThan(end.refusals[0]!);
    // The stream was opened once, and closed once nothing waited on it.
    expect(s.hit('GET /quiesce/events')).toBe(1);
  });

  it('Apollo link: the same', async () => {
    await s.begin(TEN_MINUTES);
    const end = endOnFirstRefusal(s);
    const started = Date.now();
    const client = new ApolloClient({
      link: ApolloLink.from([
        quiesceRetryLink({ ...LONG, events: `${s.rest}/quiesce/events`, onRetry: end.onRetry }),
        new HttpLink({ uri: s.graphql }),
      ]),
      cache: new InMemoryCache(),
    });
    const result = await client.mutate({
      mutation: gql`
        mutation AddNote($text: String!) {
          addNote(text: $text) {
            id
          }
        }
      `,
      variables: { text: 'woken' },
    });
    expect(result.data).toEqual({ addNote: { __typename: 'Note', id: '1' } });
    expect(s.applied).toEqual(['note:woken']);
    expect(Date.now() - started).toBeLessThan(end.refusals[0]!);
  });

  it('a stream that cannot be opened leaves the Retry-After wait in place', async () => {
    await s.begin(2_000);
    const end = endOnFirstRefusal(s);
    // maxWaitMs bounds the timer's wait whatever Retry-After the server computed.
    const f = withQuiesceRetry(fetch, {
      ...LONG,
      maxWaitMs: 1_500,
      events: `${s.rest}/no-such-stream`,
      onRetry: end.onRetry,
    });
    const res = await f(`${s.rest}/notes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"text":"timer"}',
    });
    expect(res.status).toBe(201);
    expect(s.applied).toEqual(['note:timer']);
    expect(s.hit('POST /notes')).toBe(2);
    expect(s.hit('GET /no-such-stream')).toBe(1);
    expect(end.refusals[0]).toBeGreaterThanOrEqual(1_000);
    expect(() => withQuiesceRetry(fetch, { events: 42 as never })).toThrow(/events/);
  });
});
