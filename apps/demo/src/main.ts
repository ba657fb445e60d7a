import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Logger } from '@quiesce/core';
import { buildDemo } from './buildDemo.js';

const env = process.env;
const cliBin = join(
  dirname(createRequire(import.meta.url).resolve('@quiesce/cli/package.json')),
  'dist/bin.js',
);
const print = (s = '') => process.stdout.write(`${s}\n`);

const logger: Logger = {
  debug() {},
  info(message, fields) {
    if (env.QUIESCE_DEMO_VERBOSE) print(`[info] ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`);
  },
  warn: (message, fields) =>
    process.stderr.write(`[warn] ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`),
  error: (message, fields) =>
    process.stderr.write(`[error] ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`),
};

function port(): number {
  const raw = env.PORT ?? '3000';
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n > 65535) {
    process.stderr.write(`quiesce demo: PORT must be a port number (0-65535), got "${raw}"\n`);
    process.exit(2);
  }
  return n;
}

const demo = await buildDemo({
  port: port(),
  ...(env.HOST ? { host: env.HOST } : {}),
  ...(env.DATABASE_URL ? { databaseUrl: env.DATABASE_URL } : {}),
  ...(env.REDIS_URL ? { redisUrl: env.REDIS_URL } : {}),
  ...(env.QUIESCE_ADMIN_TOKEN ? { adminToken: env.QUIESCE_ADMIN_TOKEN } : {}),
  // Two demos on one machine: their own data directory, schema and Redis key prefix.
  ...(env.QUIESCE_DEMO_DATA_DIR ? { dataDir: env.QUIESCE_DEMO_DATA_DIR } : {}),
  ...(env.QUIESCE_DEMO_SCHEMA ? { schema: env.QUIESCE_DEMO_SCHEMA } : {}),
  logger,
}).catch((err) => {
  process.stderr.write(`quiesce demo: could not start: ${err?.message ?? err}\n`);
  if (String(err?.message).includes('EADDRINUSE'))
    process.stderr.write('  (the port is taken: set PORT=3001)\n');
  process.exit(1);
});

const where =
  demo.database === 'pglite'
    ? `embedded PGlite under ${env.QUIESCE_DEMO_DATA_DIR ?? 'apps/demo/.data'} (no server needed), state in ${env.QUIESCE_DEMO_DATA_DIR ?? 'apps/demo/.data'}/state.json`
    : `PostgreSQL (DATABASE_URL), state in ${demo.store}`;
print(`
quiesce demo — ${where}

  notes board   ${demo.url}/
  admin page    ${demo.url}/admin#token=${demo.adminToken}
  GraphQL       ${demo.url}/graphql
  MCP           ${demo.url}/mcp  (Streamable HTTP: list_notes, add_note, delete_note)
  NestJS        ${demo.url}/nest/notes/1
  metrics       ${demo.url}/metrics
  admin API     ${demo.url}/quiesce/admin/status  (Authorization: Bearer <token>)

  admin token   ${demo.adminToken}

Try a window from another terminal:
  export QUIESCE_URL=${demo.url}/quiesce QUIESCE_TOKEN=${demo.adminToken}
  alias quiesce="node ${cliBin}"
  quiesce begin --reason "tour" --message "Notes are read-only for a few minutes." --for 10m \\
    --rollback-plan "Switch search back to the old index."
  quiesce end

Escalate: during a window, searches that find nothing (drift score deltaS = 1, over the 0.6 limit)
degrade reads; the watcher judges every 64th timed read, so 64 of them extend the window by 10 min
(at most twice) and run the rollback hook once. Between begin and end:
  for i in $(seq 64); do curl -s "${demo.url}/api/notes/search?q=zebra" >/dev/null; done
  quiesce status      # escal. line; the admin page lists each escalation

Ctrl-C stops the demo.`);

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) {
      process.stderr.write('quiesce demo: forced exit\n');
      process.exit(1);
    }
    stopping = true;
    print(`\n${sig}: shutting down (in-flight requests finish, workers stop, data is flushed)…`);
    demo.close().then(
      () => {
        print('quiesce demo: stopped');
        process.exit(0);
      },
      (err) => {
        process.stderr.write(`quiesce demo: shutdown failed: ${err?.message ?? err}\n`);
        process.exit(1);
      },
    );
  });
}
