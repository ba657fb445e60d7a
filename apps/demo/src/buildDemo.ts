import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  attachReadSignals,
  createFileStore,
  createQuiesce,
  type EscalationOptions,
  escalationRows,
  type Logger,
  type QuiesceEngine,
  QuiesceError,
  type StateStore,
  silentLogger,
} from '@quiesce/core';
import type { HttpIntentPayload } from '@quiesce/core/http';
import { queue, quiesce, quiesceRouter } from '@quiesce/express';
import { mcpEndpointRule } from '@quiesce/mcp';
import { createPgBossIntentQueue, freezeJobs, pgliteDatabase } from '@quiesce/pg-boss';
import { createPostgresStore, createWriteAudit } from '@quiesce/postgres';
import { createRedisStore } from '@quiesce/redis';
import express, { type NextFunction, type Request, type Response } from 'express';
import { PgBoss } from 'pg-boss';
import { type Database, notesRepository, openDatabase } from './database.js';
import { createGraphqlNotes } from './graphqlNotes.js';
import { createMcpNotes } from './mcpNotes.js';
import { prometheusMetrics } from './metrics.js';
import { createNestNotes } from './nestNotes.js';
import { searchNotes } from './noteSearch.js';
import { adminPage, notesPage } from './pages.js';

export interface DemoOptions {
  /** Port to listen on; `0` picks a free one. @default 3000 */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** Where embedded PGlite and the file store keep their data. @default apps/demo/.data */
  dataDir?: string;
  /** PostgreSQL instead of PGlite: notes, pg-boss and (without `redisUrl`) the quiesce state. */
  databaseUrl?: string;
  /** Keep the quiesce state and instance registry in Redis. Needs `databaseUrl` for the rest. */
  redisUrl?: string;
  /** Prefix of every schema (`<schema>`, `<schema>_boss`, `<schema>_quiesce`) and Redis key. @default 'demo' */
  schema?: string;
  /** Bearer token of the admin API and page (at least 16 characters). @default random per start */
  adminToken?: string;
  /** Soak after a window ends, before the closure notice and backfill. @default 5000 */
  soakMs?: number;
  /** @default 15000 */
  drainDeadlineMs?: number;
  /** pg-boss cron of the digest job, or false for none. @default '* * * * *' */
  cron?: string | false;
  /**
   * With PostgreSQL: how long the storage write audit waits for late table statistics at each edge
   * of a window before its report goes into the closing record. @default 10000
   */
  /** Period of the in-process snapshot tick (a `setInterval` guarded by `engine.guardJob`). @default 30000 */
  snapshotEveryMs?: number;
  /**
   * The escalation policy: when reads degrade during a window (read p95 or errors against the
   * baseline, or the search's drift score `deltaS` above 0.6 or over 2× its baseline), extend the
   * window by `extendBy` ms, at most `maxExtensions` times, and run the demo's rollback hook once.
   * `false`: the `escalate` event only (core's default).
   * @default { extendBy: 600000, maxExtensions: 2 }
   */
  escalation?: { extendBy?: number; maxExtensions?: number } | false;
  instanceId?: string;
  logger?: Logger;
}

export interface Demo {
  /** `http://host:port` */
  readonly url: string;
  readonly adminToken: string;
  readonly engine: QuiesceEngine;
  /** `pglite` or `postgres` */
  readonly database: Database['kind'];
  /** `file`, `postgres` or `redis` */
  readonly store: string;
  readonly server: Server;
  /** How many digest rows the jobs wrote (the pg-boss worker and the in-process tick). */
  digests(): Promise<number>;
  /** Send one digest job now (what the cron does every minute). */
  sendDigest(): Promise<void>;
  /** Graceful: stop taking requests, end event streams, stop workers, close the engine and databases. */
  close(): Promise<void>;
}

const DEFAULT_DATA_DIR = fileURLToPath(new URL('../.data', import.meta.url));
const bannerScript = createRequire(import.meta.url).resolve('@quiesce/banner/quiesce-banner.global.js');
const clientScript = createRequire(import.meta.url).resolve('@quiesce/client/quiesce-client.global.js');

function invalid(field: string, message: string): never {
  throw new QuiesceError('INVALID_INPUT', `buildDemo: ${field}: ${message}`, { field });
}

/** Build and start the demo: one process, every adapter. */
export async function buildDemo(options: DemoOptions = {}): Promise<Demo> {
  const port = options.port ?? 3000;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    invalid('port', `must be an integer from 0 to 65535, got ${port}`);
  const host = options.host ?? '127.0.0.1';
  const schema = options.schema ?? 'demo';
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(schema))
    invalid('schema', `must be a lower-case SQL identifier, got "${schema}"`);
  if (options.redisUrl && !options.databaseUrl) {
    invalid(
      'redisUrl',
      'Redis holds only the quiesce state; set DATABASE_URL too (notes and pg-boss need PostgreSQL)',
    );
  }
  // Hex, not base64url: a token starting with '-' reads as an option in `quiesce --token <t>`.
  const adminToken = options.adminToken ?? randomBytes(20).toString('hex');
  if (adminToken.length < 16) invalid('adminToken', 'must be at least 16 characters');
  const log = options.logger ?? silentLogger;
  const dataDir = options.dataDir ?? DEFAULT_DATA_DIR;
  const bossSchema = `${schema}_boss`;
  const escalation: EscalationOptions | null =
    options.escalation === false
      ? null
      : {
          extendBy: options.escalation?.extendBy ?? 10 * 60_000,
          maxExtensions: options.escalation?.maxExtensions ?? 2,
          // The demo has nothing to roll back: it records what a real app would act on.
          rollback: ({ rollbackPlan, evidence }) => {
            log.warn('demo: rollback hook ran', { rollbackPlan, reasons: evidence.reasons });
            return {
              plan: rollbackPlan ?? 'none given',
              done: 'nothing: the demo only records the plan and the evidence',
            };
          },
        };
  const cleanups: Array<() => unknown> = [];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        log.warn('demo: shutdown step failed', { error: (err as Error).message });
      }
    }
  };

  try {
    // Metrics first: core takes its meter when the engine is built.
    const metricsHandler = prometheusMetrics();

    const db = await openDatabase({
      ...(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {}),
      dataDir,
    });
    cleanups.push(() => db.close());
    const notes = notesRepository(db, schema);
    await notes.migrate();

    const boss = db.pglite
      ? new PgBoss({ db: pgliteDatabase(db.pglite as never), backend: 'pglite', schema: bossSchema } as never)
      : new PgBoss({ connectionString: options.databaseUrl!, schema: bossSchema, max: 4 });
    boss.on('error', (err: Error) => log.error('demo: pg-boss error', { error: err.message }));
    await boss.start();
    cleanups.push(() => boss.stop({ graceful: true, timeout: 5000 }));
    const intentQueue = await createPgBossIntentQueue({ boss, schema: bossSchema });
    cleanups.push(() => intentQueue.close());

    let store: StateStore;
    if (options.redisUrl) store = createRedisStore({ url: options.redisUrl, prefix: `${schema}:quiesce:` });
    else if (db.pool) store = createPostgresStore({ pool: db.pool, schema: `${schema}_quiesce` });
    else store = createFileStore({ path: join(dataDir, 'state.json') });
    cleanups.push(() => store.close());

    const engine = createQuiesce({
      store,
      intentQueue,
      soakMs: options.soakMs ?? 5000,
      drainDeadlineMs: options.drainDeadlineMs ?? 15_000,
      logger: log,
      // MCP: the endpoint carries reads too; the decision is per tool call (guardMcpServer).
      rules: [mcpEndpointRule('/mcp')],
      ...(options.instanceId ? { instanceId: options.instanceId } : {}),
      // Read-quality signals (#18): the search reports each answer's drift score, deltaS. The
      // watcher judges every 64th timed read of the window; 20 reads with the signal are enough, so
      // the tour's 64 searches escalate even with the board's own reads in between.
      readHealth: {
        minSamples: 20,
        signals: {
          deltaS: [
            { kind: 'absolute', above: 0.6 },
            { kind: 'ratio', factor: 2 },
          ],
        },
      },
      ...(escalation ? { escalation } : {}),
    });
    cleanups.push(() => engine.close());
    await engine.start();

    // With PostgreSQL, prove afterwards that nothing reached storage: audit triggers on the demo's
    // tables, the window's writes counted by transaction visibility into the closing record.
    if (db.pool) {
      const audit = createWriteAudit({
        pool: db.pool,
        schema: `${schema}_quiesce`,
        excludeSchemas: [bossSchema],
        schemas: [schema],
        onError: (err) => log.error('demo: write audit failed', { error: err.message }),
      });
      await audit.install();
      const detach = audit.attach(engine);
      cleanups.push(() => audit.close());
      cleanups.push(detach);
    }

    // Jobs: a pg-boss worker and cron schedule (frozen with the window), and an in-process tick.
    await boss.createQueue('notes.digest');
    const jobs = await freezeJobs(boss, engine, {
      schema: bossSchema,
      queues: { 'notes.digest': { missed: 'coalesce' } },
    });
    cleanups.push(() => jobs.close());
    await jobs.work('notes.digest', async () => {
      await notes.digest();
    });
    if (options.cron !== false) await boss.schedule('notes.digest', options.cron ?? '* * * * *');
    const snapshot = engine.guardJob('board.snapshot', () => notes.digest(), {
      missed: 'coalesce',
      source: 'setInterval',
    });
    const tick = setInterval(() => void snapshot().catch(() => {}), options.snapshotEveryMs ?? 30_000);
    tick.unref();
    cleanups.push(() => clearInterval(tick));

    const yoga = createGraphqlNotes(engine, notes);
    const nest = await createNestNotes(engine, notes);
    cleanups.push(() => nest.close());

    engine.handle('notes.create', async (p: HttpIntentPayload, ctx) => {
      const text = (p.body as { text?: unknown } | null)?.text;
      if (typeof text !== 'string') throw new Error('queued note without text');
      await notes.create(text, 'replay', ctx.idempotencyKey);
    });

    const router = quiesceRouter(engine, { adminToken });
    cleanups.push(() => router.close());
    const app = express();
    app.disable('x-powered-by');
    app.use('/quiesce', router);
    app.use(yoga.graphqlEndpoint, yoga as never);
    app.use('/nest', nest.handler);
    app.get('/metrics', (req, res) => metricsHandler(req, res));
    app.get(
      '/healthz',
      (_req, res) => void res.json({ ok: true, phase: engine.phase, readOnly: engine.readOnly }),
    );
    app.get('/assets/quiesce-banner.js', (_req, res) => res.type('js').sendFile(bannerScript));
    app.get('/assets/quiesce-client.js', (_req, res) => res.type('js').sendFile(clientScript));
    const html = (page: string) => (_req: Request, res: Response) => {
      res.set('cache-control', 'no-store').type('html').send(page);
    };
    app.get('/', html(notesPage));
    app.get('/admin', html(adminPage));
    // #18: the window's escalations for the admin page, as core turns the record into rows (the
    // rows `quiesce status` prints). Behind the admin token; before `quiesce()`, so not a timed read.
    const tokenDigest = createHash('sha256').update(adminToken).digest();
    app.get('/admin/escalation', (req, res) => {
      const given = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1];
      if (!given || !timingSafeEqual(createHash('sha256').update(given).digest(), tokenDigest)) {
        res.status(401).type('application/problem+json').json({
          type: 'about:blank',
          title: 'Unauthorized',
          status: 401,
          detail: 'the admin token is required (Authorization: Bearer <token>)',
        });
        return;
      }
      res
        .set('cache-control', 'no-store')
        .json({ escalation: escalationRows(engine.window, engine.options.escalation) });
    });

    app.use(express.json({ limit: '64kb' }));
    app.use(quiesce(engine));
    const validNote = (req: Request, res: Response, next: NextFunction) => {
      const text = (req.body as { text?: unknown } | undefined)?.text;
      if (typeof text !== 'string' || text.trim() === '' || text.length > 500) {
        res.status(400).type('application/problem+json').json({
          type: 'about:blank',
          title: 'Invalid input',
          status: 400,
          detail: 'text: must be a non-empty string of at most 500 characters',
          field: 'text',
        });
        return;
      }
      next();
    };
    app.get('/api/notes', async (_req, res) => void res.json(await notes.list()));
    // A read with a read-quality signal: the answer's drift score rides on the timed read (#18).
    app.get('/api/notes/search', async (req, res) => {
      const result = searchNotes(await notes.list(), String(req.query.q ?? ''));
      attachReadSignals(res, { deltaS: result.deltaS });
      res.json(result);
    });
    app.post('/api/notes', validNote, queue({ name: 'notes.create' }), async (req, res) => {
      const key = req.get('idempotency-key') ?? undefined;
      res.status(201).json(await notes.create(req.body.text.trim(), 'rest', key));
    });
    app.delete('/api/notes/:id', async (req, res) => {
      const removed = await notes.remove(Number(req.params.id));
      res.status(removed ? 204 : 404).end();
    });
    app.post('/mcp', createMcpNotes(engine, notes));

    const server = createServer(app);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          const force = setTimeout(() => server.closeAllConnections(), 5000);
          force.unref();
          server.close(() => {
            clearTimeout(force);
            resolve();
          });
          server.closeIdleConnections();
        }),
    );
    const address = server.address() as AddressInfo;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;

    let closing: Promise<void> | null = null;
    return {
      url,
      adminToken,
      engine,
      database: db.kind,
      store: store.kind,
      server,
      digests: () => notes.digests(),
      sendDigest: async () => {
        await boss.send('notes.digest', {});
      },
      close: () => (closing ??= cleanup()),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
