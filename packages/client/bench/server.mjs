// The storm benchmark's server, in its own process so the clients' loops do not slow it down by
// sharing its event loop: a real Express app with @quiesce/express (POST /notes) and a real Yoga
// server with @quiesce/graphql-yoga (/graphql), quiesce's default Retry-After (floor 5 s, jitter 5 s).
// Driven over IPC: `begin` (window ending in `windowMs`), `end`, `stats`.
import { createServer } from 'node:http';
import { createQuiesce } from '@quiesce/core';
import { quiesce, quiesceRouter } from '@quiesce/express';
import { quiesceDirectives, useQuiesce } from '@quiesce/graphql-yoga';
import express from 'express';
import { createSchema, createYoga } from 'graphql-yoga';

const engine = createQuiesce({ soakMs: 0, heartbeatMs: 100 });
await engine.start();

let endedAt = null;
const stats = { during: 0, after: 0, applied: [], refusals: [] };
const count = () => {
  if (engine.readOnly) stats.during++;
  else stats.after++;
};
const apply = (id) => stats.applied.push({ id, atMs: Date.now() - endedAt });

const yoga = createYoga({
  schema: createSchema({
    typeDefs: [quiesceDirectives, 'type Query { ok: Boolean } type Mutation { addNote(id: ID!): Boolean }'],
    resolvers: {
      Mutation: {
        addNote: (_, { id }) => {
          apply(id);
          return true;
        },
      },
    },
  }),
  plugins: [useQuiesce(engine)],
  logging: false,
});

const app = express();
app.use((_req, _res, next) => {
  count();
  next();
});
// When each refused client was told to come back: the earliest an obedient client can return.
engine.on('decision', (d) => {
  if (d.outcome === 'refuse') stats.refusals.push(Date.now() + d.retryAfter * 1000);
});
app.use('/graphql', yoga);
app.use('/quiesce', quiesceRouter(engine, { adminToken: 'storm-bench-admin-token-0123456789' }));
app.use(quiesce(engine));
app.use(express.json());
app.post('/notes', (req, res) => {
  apply(req.body.id);
  res.status(201).json({ ok: true });
});

const server = createServer({ keepAliveTimeout: 60_000 }, app);
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));

process.on('message', async (m) => {
  if (m.type === 'begin') {
    await engine.begin({
      reason: 'bench',
      message: 'Read-only for the storm benchmark.',
      endsAt: new Date(Date.now() + m.windowMs).toISOString(),
    });
    await engine.waitForPhase('frozen');
    process.send({ type: 'begun' });
  } else if (m.type === 'end') {
    endedAt = Date.now();
    await engine.end();
    process.send({ type: 'ended' });
  } else if (m.type === 'stats') {
    process.send({ type: 'stats', stats: { ...stats, refusals: stats.refusals.map((t) => t - endedAt) } });
  }
});
