import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { type ClassificationRule, createQuiesce, type Policy } from '@quiesce/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agentNoticeOf, guardedTools, guardMcpServer, type ToolOverride } from '../src/index.js';

// Runs per property; CI: QUIESCE_MCP_PROPERTY_RUNS=200.
const numRuns = Number(process.env.QUIESCE_MCP_PROPERTY_RUNS ?? 40);

const policy = fc.constantFrom<Policy>('block', 'drop', 'allow', 'queue');
const decision = fc.oneof(fc.constant('read' as const), policy);
const hints = fc.option(
  fc.record(
    {
      readOnlyHint: fc.option(fc.boolean(), { nil: undefined }),
      destructiveHint: fc.option(fc.boolean(), { nil: undefined }),
      idempotentHint: fc.option(fc.boolean(), { nil: undefined }),
    },
    { requiredKeys: [] },
  ),
  { nil: undefined },
);

/** The documented order: override, then rule, then readOnlyHint: true, else a blocked write. */
function expected(
  override: 'read' | Policy | undefined,
  rule: 'read' | Policy | undefined,
  readOnlyHint: boolean | undefined,
) {
  const as = (d: 'read' | Policy, by: string) => (d === 'read' ? ['read', 'allow', by] : ['write', d, by]);
  if (override !== undefined) return as(override, 'override');
  if (rule !== undefined) return as(rule, 'rule');
  if (readOnlyHint === true) return ['read', 'allow', 'annotation'];
  return ['write', 'block', 'default'];
}

describe('classification of MCP tools (property)', () => {
  it('follows override > rule > readOnlyHint > default, and the call during a window matches it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.option(decision, { nil: undefined }),
        fc.option(decision, { nil: undefined }),
        hints,
        async (override, rule, annotations) => {
          const rules: ClassificationRule[] =
            rule === undefined
              ? []
              : [
                  rule === 'read'
                    ? { surface: 'tool', name: 'tool t', classification: 'read' }
                    : { surface: 'tool', name: 'tool t', policy: rule },
                ];
          const engine = createQuiesce({ rules });
          const tools: Record<string, ToolOverride> = override === undefined ? {} : { t: override };
          const server = guardMcpServer(new McpServer({ name: 's', version: '1' }), engine, { tools });
          let ran = 0;
          server.registerTool('t', annotations ? { annotations } : {}, async () => {
            ran++;
            return { content: [] };
          });
          const want = expected(override, rule, annotations?.readOnlyHint);
          const [info] = guardedTools(server);
          expect([info!.classification, info!.policy, info!.by]).toEqual(want);
          expect(engine.inventory()).toEqual([
            expect.objectContaining({
              name: 'tool t',
              classification: want[0],
              policy: want[1],
              explicit: want[2] !== 'default',
              details: expect.objectContaining({ classifiedBy: want[2] }),
            }),
          ]);

          const [c, s] = InMemoryTransport.createLinkedPair();
          const client = new Client({ name: 'agent', version: '1' });
          await Promise.all([server.connect(s), client.connect(c)]);
          try {
            await engine.begin({ reason: 'property', message: 'm' });
            const r = (await client.callTool({ name: 't', arguments: {} })) as CallToolResult;
            const runs = want[0] === 'read' || want[1] === 'allow';
            expect(ran).toBe(runs ? 1 : 0);
            const outcome = { block: 'refused', drop: 'dropped', queue: 'queued', allow: undefined }[
              want[1] as Policy
            ];
            if (!runs) {
              expect(agentNoticeOf(r)?.outcome).toBe(outcome);
              expect(r.isError === true).toBe(outcome !== 'queued');
            } else expect(agentNoticeOf(r)).toBeNull();
          } finally {
            await client.close();
            await engine.close();
          }
        },
      ),
      { numRuns },
    );
  });
});
