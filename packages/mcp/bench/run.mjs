// pnpm --filter @quiesce/mcp bench: tool calls over the SDK's in-memory transport, on a bare
// McpServer and on the same server under guardMcpServer, interleaved rounds, medians and ratios.
// Outside a window (the common case) and during one (reads run, writes refused). Figures only.
// BENCH_ROUNDS and BENCH_CALLS override the defaults.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { createQuiesce } from '@quiesce/core';
import { guardMcpServer } from '@quiesce/mcp';

const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const calls = Number(process.env.BENCH_CALLS ?? 2000);

async function setup(guarded) {
  const engine = createQuiesce();
  const base = new McpServer({ name: 'bench', version: '1.0.0' });
  const server = guarded ? guardMcpServer(base, engine) : base;
  server.registerTool('look', { annotations: { readOnlyHint: true } }, async () => ({ content: [] }));
  server.registerTool('write', {}, async () => ({ content: [] }));
  const [c, s] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await Promise.all([server.connect(s), client.connect(c)]);
  return { engine, client };
}

async function measure(client, name) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await client.callTool({ name, arguments: {} });
  return Number(process.hrtime.bigint() - start) / 1000 / calls; // µs per call
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const bare = await setup(false);
const guarded = await setup(true);
const windowed = await setup(true);
await windowed.engine.begin({ reason: 'bench', message: 'bench' });

const cases = {
  'bare: read tool': () => measure(bare.client, 'look'),
  'guarded: read tool, no window': () => measure(guarded.client, 'look'),
  'bare: write tool': () => measure(bare.client, 'write'),
  'guarded: write tool, no window': () => measure(guarded.client, 'write'),
  'guarded: read tool, window': () => measure(windowed.client, 'look'),
  'guarded: write tool, window (refused)': () => measure(windowed.client, 'write'),
};
const results = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (const run of Object.values(cases)) await run(); // warm-up
for (let r = 0; r < rounds; r++) for (const [k, run] of Object.entries(cases)) results[k].push(await run());

console.log(`@quiesce/mcp — ${calls} calls × ${rounds} rounds, median µs per call (in-memory transport)`);
const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
for (const [k, v] of Object.entries(m)) console.log(`  ${k.padEnd(40)} ${v.toFixed(1).padStart(8)} µs`);
console.log(
  `  ratio guarded/bare, read tool:  ${(m['guarded: read tool, no window'] / m['bare: read tool']).toFixed(3)}`,
);
console.log(
  `  ratio guarded/bare, write tool: ${(m['guarded: write tool, no window'] / m['bare: write tool']).toFixed(3)}`,
);
for (const s of [bare, guarded, windowed]) {
  await s.client.close();
  await s.engine.close();
}
