// Retry storm: N clients each write once during a window, against a local server (bench/server.mjs,
// its own process) with quiesce's default Retry-After (the window's end + 0–5 s, floor 5 s). The
// window is announced for WINDOW_MS and ended by the operator at that time. Per strategy:
// - requests that hit the server while it was read-only,
// - writes landed (and duplicates), and how long after the end each landed (the spread of returns),
// - `asked`: the latest return the server's Retry-After allowed (the smallest spread of clients that honour it).
// Strategies: (a) a naive loop re-posting at once until it succeeds (GraphQL; (a') the same on REST); (b) Apollo Client with
// RetryLink defaults; (c) Apollo Client with @quiesce/client's link; (d) @quiesce/client's fetch
// wrapper on REST; (e) the same following /quiesce/events. Medians over RUNS runs.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { ApolloClient, ApolloLink, gql, HttpLink, InMemoryCache } from '@apollo/client';
import { RetryLink } from '@apollo/client/link/retry';
import { quiesceRetryLink } from '../dist/apollo.js';
import { withQuiesceRetry } from '../dist/index.js';

const N = Number(process.env.BENCH_CLIENTS ?? 200);
const WINDOW_MS = Number(process.env.BENCH_WINDOW_MS ?? 10_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Only the strategies whose name contains one of these letters, e.g. `a,c`. @default all */
const ONLY = process.env.BENCH_ONLY?.split(',').map((l) => `(${l.trim()})`);
/** Clients start at random within this much of the window's start. */
const START_SPREAD_MS = 1_000;
/** A client still trying this long after the end is counted as not landed. */
const GRACE_MS = 40_000;

const ADD_NOTE = gql`
  mutation AddNote($id: ID!) {
    addNote(id: $id)
  }
`;
const MUTATION_BODY = (id) =>
  JSON.stringify({ query: 'mutation AddNote($id: ID!) { addNote(id: $id) }', variables: { id } });

const apollo = (url, link) =>
  new ApolloClient({
    link: ApolloLink.from([link, new HttpLink({ uri: `${url}/graphql` })]),
    cache: new InMemoryCache(),
  });

const STRATEGIES = {
  '(a) naive immediate retry': (url, deadline) => async (id) => {
    while (Date.now() < deadline) {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: MUTATION_BODY(id),
      });
      const body = await res.json();
      if (res.ok && !body.errors) return;
    }
    throw new Error('deadline');
  },
  "(a') naive immediate retry (REST)": (url, deadline) => async (id) => {
    while (Date.now() < deadline) {
      const res = await fetch(`${url}/notes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id }),
      });
      await res.arrayBuffer();
      if (res.ok) return;
    }
    throw new Error('deadline');
  },
  '(b) Apollo RetryLink defaults': (url) => {
    const client = apollo(url, new RetryLink());
    return (id) => client.mutate({ mutation: ADD_NOTE, variables: { id } });
  },
  '(c) @quiesce/client Apollo link': (url) => {
    const client = apollo(url, quiesceRetryLink());
    return (id) => client.mutate({ mutation: ADD_NOTE, variables: { id } });
  },
  '(d) @quiesce/client fetch (REST)': (url) => {
    const f = withQuiesceRetry(fetch);
    return async (id) => {
      const res = await f(`${url}/notes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id }),
      });
      if (!res.ok) throw new Error(`status ${res.status}`);
    };
  },
  // One wrapper per client, as each browser tab has its own: each opens its own event stream.
  '(e) @quiesce/client fetch + events': (url) => async (id) => {
    const f = withQuiesceRetry(fetch, { events: `${url}/quiesce/events` });
    const res = await f(`${url}/notes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id }),
    });
    if (!res.ok) throw new Error(`status ${res.status}`);
  },
};

async function runOnce(name) {
  const server = fork(new URL('./server.mjs', import.meta.url), {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [{ port }] = await once(server, 'message');
  const url = `http://127.0.0.1:${port}`;
  const ask = async (type, extra = {}) => {
    server.send({ type, ...extra });
    for (;;) {
      const [m] = await once(server, 'message');
      if (m.type === (type === 'stats' ? 'stats' : `${type === 'begin' ? 'begun' : 'ended'}`)) return m;
    }
  };
  await ask('begin', { windowMs: WINDOW_MS });
  const begunAt = Date.now();
  const deadline = begunAt + WINDOW_MS + GRACE_MS;
  const write = STRATEGIES[name](url, deadline);
  let failed = 0;
  const clients = Array.from({ length: N }, (_, i) =>
    new Promise((r) => setTimeout(r, Math.random() * START_SPREAD_MS))
      .then(() => write(`n${i}`))
      .catch(() => {
        failed++;
      }),
  );
  await new Promise((r) => setTimeout(r, begunAt + WINDOW_MS - Date.now()));
  await ask('end');
  await Promise.race([Promise.all(clients), new Promise((r) => setTimeout(r, GRACE_MS).unref())]);
  const { stats } = await ask('stats');
  server.kill();
  const landed = new Set(stats.applied.map((a) => a.id));
  const delays = stats.applied.map((a) => a.atMs).sort((x, y) => x - y);
  return {
    during: stats.during,
    landed: landed.size,
    duplicates: stats.applied.length - landed.size,
    failed,
    returnMedian: pct(delays, 0.5),
    returnP95: pct(delays, 0.95),
    returnMax: delays.at(-1) ?? Number.NaN,
    asked: Math.max(0, ...stats.refusals),
  };
}

const pct = (sorted, p) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : Number.NaN;
const median = (xs) =>
  pct(
    [...xs].sort((a, b) => a - b),
    0.5,
  );

console.log(
  `retry storm: ${N} clients, ${WINDOW_MS / 1000} s window, ${RUNS} run(s) per strategy; medians over runs`,
);
const rows = {};
for (const name of Object.keys(STRATEGIES).filter((n) => !ONLY || ONLY.some((o) => n.startsWith(o)))) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await runOnce(name));
  rows[name] = Object.fromEntries(Object.keys(runs[0]).map((k) => [k, median(runs.map((r) => r[k]))]));
}
const ms = (v) => (Number.isNaN(v) ? '—' : `${(v / 1000).toFixed(2)} s`);
console.table(
  Object.fromEntries(
    Object.entries(rows).map(([name, r]) => [
      name,
      {
        'requests during window': r.during,
        landed: `${r.landed}/${N}`,
        duplicates: r.duplicates,
        'gave up': r.failed,
        'return after end (median)': ms(r.returnMedian),
        p95: ms(r.returnP95),
        'last (spread)': ms(r.returnMax),
        'server asked (latest)': ms(r.asked),
      },
    ]),
  ),
);
for (const [c, naive] of [
  ['(c) @quiesce/client Apollo link', '(a) naive immediate retry'],
  ['(d) @quiesce/client fetch (REST)', "(a') naive immediate retry (REST)"],
  ['(e) @quiesce/client fetch + events', "(a') naive immediate retry (REST)"],
]) {
  const r = rows[c];
  if (!r || !rows[naive]) continue;
  console.log(
    `${c}: ${(rows[naive].during / r.during).toFixed(1)}× fewer requests during the window than ${naive.slice(0, 4)} (aim ≥ 20×); ` +
      `spread ${(r.returnMax / r.asked).toFixed(2)}× the minimum an obedient client can have (aim ≤ 2×)`,
  );
}
