import type { McpServer, RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import {
  agentRefusal,
  type Decision,
  type EnqueueDecision,
  isQuiesceError,
  type Operation,
  type QuiesceEngine,
  QuiesceError,
  type QuiesceErrorCode,
} from '@quiesce/core';
import { IDEMPOTENCY_KEY_META, replayExtra } from './replayContext.js';
import {
  type ClassifiedBy,
  classifyTool,
  type ToolClassification,
  type ToolOverride,
} from './toolClassification.js';
import { agentToolResult, invalidCallResult } from './toolResult.js';

/** The `extra` argument of an MCP tool handler, as far as quiesce reads it. */
export interface ToolCallExtra {
  _meta?: Record<string, unknown> | undefined;
  authInfo?: { clientId?: string | undefined } | undefined;
  [key: string]: unknown;
}

export interface GuardMcpServerOptions {
  /**
   * Per-tool decisions by tool name: `'read'`, a write policy (`'block'`, `'queue'`, `'drop'`,
   * `'allow'`) or `{ classification, policy }`. They beat the engine's rules and the tool's annotations.
   */
  tools?: Record<string, ToolOverride>;
  /**
   * The idempotency key of a queued call; `undefined` derives one from the tool name, the arguments
   * and the principal (so identical calls are one intent).
   * @default the request's `_meta["dev.quiesce/idempotency-key"]`
   */
  idempotencyKey?: (args: unknown, extra: ToolCallExtra) => string | undefined;
  /** Who calls, kept with an intent and part of a derived key. @default extra.authInfo?.clientId */
  principal?: (extra: ToolCallExtra) => string | undefined;
}

/** The payload kept for a queued call: the validated arguments, replayed into the same handler. */
export interface McpIntentPayload {
  tool: string;
  arguments: unknown;
}

export interface GuardedToolInfo {
  name: string;
  classification: 'read' | 'write';
  policy: 'block' | 'queue' | 'drop' | 'allow';
  by: ClassifiedBy;
}

type Handler = (...params: unknown[]) => unknown;
type TaskHandler = { createTask: Handler; [k: string]: unknown };

const kGuarded = Symbol.for('quiesce.mcp.guarded');
const MAX_KEY_LENGTH = 255;

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Internal name of the SDK's tool registry; read once, to guard tools registered before the call. */
const REGISTRY_FIELD = '_registeredTools';

/**
 * Guard every tool of an MCP server, those registered already and those registered later
 * (`registerTool`, `tool`, `experimental.tasks.registerToolTask`). A tool declaring
 * `annotations.readOnlyHint: true` is a read; any other tool is a write, blocked during a window
 * unless a rule or an override gives it another policy. Every tool appears in `engine.inventory()`.
 * Returns the same server.
 */
export function guardMcpServer<S extends McpServer>(
  server: S,
  engine: QuiesceEngine,
  options: GuardMcpServerOptions = {},
): S {
  if (!server || typeof server.registerTool !== 'function')
    throw new QuiesceError('INVALID_INPUT', 'guardMcpServer: server must be an McpServer', {
      field: 'server',
    });
  if (!engine || typeof engine.decide !== 'function')
    throw new QuiesceError('INVALID_INPUT', 'guardMcpServer: engine must be a quiesce engine', {
      field: 'engine',
    });
  const overrides = options.tools ?? {};
  if (typeof overrides !== 'object')
    throw new QuiesceError('INVALID_INPUT', 'guardMcpServer: tools must be an object', { field: 'tools' });
  const s = server as S & { [kGuarded]?: McpGuard };
  if (s[kGuarded]) {
    if (s[kGuarded].engine !== engine)
      throw new QuiesceError(
        'INVALID_INPUT',
        'guardMcpServer: this server is already guarded by another engine',
        {
          field: 'engine',
        },
      );
    return server;
  }
  const guard = new McpGuard(engine, overrides, options);
  s[kGuarded] = guard;

  const wrap = <F extends (...a: any[]) => RegisteredTool>(target: object, key: string) => {
    const original = (target as Record<string, F>)[key]!;
    (target as Record<string, unknown>)[key] = function (this: unknown, name: string, ...rest: unknown[]) {
      const tool = original.call(this, name, ...rest);
      guard.guard(name, tool);
      return tool;
    };
  };
  wrap(server, 'registerTool');
  wrap(server, 'tool');
  const tasks = (server as { experimental?: { tasks?: object } }).experimental?.tasks;
  if (tasks && typeof (tasks as Record<string, unknown>).registerToolTask === 'function')
    wrap(tasks, 'registerToolTask');
  // Last, so that a tool refused here (removed, error thrown) leaves the later ones guarded anyway.
  const existing = (server as unknown as Record<string, unknown>)[REGISTRY_FIELD];
  if (existing && typeof existing === 'object') {
    for (const [name, tool] of Object.entries(existing as Record<string, RegisteredTool>))
      guard.guard(name, tool);
  }
  return server;
}

/** The classification of every tool `guardMcpServer` guards on this server (for tests and status pages). */
export function guardedTools(server: McpServer): GuardedToolInfo[] {
  const guard = (server as { [kGuarded]?: McpGuard })[kGuarded];
  return guard ? guard.info() : [];
}

class GuardedTool {
  readonly guard: McpGuard;
  readonly tool: RegisteredTool;
  name: string;
  handler: Handler | TaskHandler;
  #seen: unknown = Symbol('unseen');
  #c: ToolClassification | null = null;
  #wrappedTask: { of: TaskHandler; wrapped: TaskHandler } | null = null;

  constructor(guard: McpGuard, name: string, tool: RegisteredTool) {
    this.guard = guard;
    this.tool = tool;
    this.name = name;
    this.handler = tool.handler as Handler | TaskHandler;
  }

  /** Classification for the tool as it is now; recomputed (and re-registered) when annotations change. */
  classification(): ToolClassification {
    const annotations = this.tool.annotations;
    if (this.#c === null || this.#seen !== annotations) {
      const c = classifyTool(this.guard.engine, this.name, annotations, this.guard.overrides[this.name]);
      if (c.policy === 'queue' && c.classification === 'write') {
        // A queued call answers "accepted" with no output and is replayed through a plain handler.
        const why = this.tool.outputSchema
          ? 'a tool with an outputSchema cannot be queued (its queued result has no output)'
          : typeof this.handler !== 'function'
            ? 'a task-based tool cannot be queued'
            : null;
        if (why)
          throw new QuiesceError('INVALID_INPUT', `tools.${this.name}: ${why}; use block or drop`, {
            field: `tools.${this.name}`,
          });
      }
      this.#c = c;
      this.#seen = annotations;
      this.guard.register(this, c);
    }
    return this.#c;
  }

  /** What the SDK calls: the guard in front of the tool's own handler. */
  current(): Handler | TaskHandler {
    const h = this.handler;
    if (typeof h === 'function') return this.guard.guarded(this);
    if (this.#wrappedTask?.of !== h) {
      const createTask = h.createTask;
      this.#wrappedTask = {
        of: h,
        wrapped: { ...h, createTask: this.guard.guardedTask(this, createTask) },
      };
    }
    return this.#wrappedTask.wrapped;
  }
}

class McpGuard {
  readonly engine: QuiesceEngine;
  readonly overrides: Record<string, ToolOverride>;
  readonly options: GuardMcpServerOptions;
  readonly #tools = new Map<RegisteredTool, GuardedTool>();
  readonly #fns = new WeakMap<GuardedTool, Handler>();

  // Fields assigned in the body (no parameter properties): the sources also run with Node's type stripping.
  constructor(
    engine: QuiesceEngine,
    overrides: Record<string, ToolOverride>,
    options: GuardMcpServerOptions,
  ) {
    this.engine = engine;
    this.overrides = overrides;
    this.options = options;
    for (const [name, o] of Object.entries(overrides)) classifyTool(engine, name, undefined, o); // validate now
  }

  guard(name: string, tool: RegisteredTool): void {
    if (this.#tools.has(tool)) return;
    const g = new GuardedTool(this, name, tool);
    try {
      g.classification(); // inventory at registration; a bad override or queue + outputSchema throws here
    } catch (err) {
      tool.remove(); // fail closed: never leave an unguarded tool registered
      throw err;
    }
    this.#tools.set(tool, g);
    // The SDK reads `tool.handler` on every call and writes it on `update({ callback })`: guard both.
    Object.defineProperty(tool, 'handler', {
      configurable: true,
      enumerable: true,
      get: () => g.current(),
      set: (h: Handler | TaskHandler) => {
        g.handler = h;
      },
    });
    // A rename keeps the guard under the new name.
    const update = tool.update.bind(tool);
    tool.update = ((updates: Parameters<RegisteredTool['update']>[0]) => {
      update(updates);
      if (typeof updates.name === 'string' && updates.name !== g.name) {
        g.name = updates.name;
        g.classification();
      }
    }) as RegisteredTool['update'];
  }

  info(): GuardedToolInfo[] {
    return [...this.#tools.values()].map((g) => {
      const c = g.classification();
      return { name: g.name, classification: c.classification, policy: c.policy, by: c.by };
    });
  }

  register(g: GuardedTool, c: ToolClassification): void {
    this.engine.register({
      surface: 'tool',
      name: c.operation.name,
      classification: c.classification,
      policy: c.policy,
      explicit: c.by !== 'default',
      source: 'mcp',
      details: {
        tool: g.name,
        classifiedBy: c.by,
        ...(g.tool.annotations ? { annotations: g.tool.annotations } : {}),
      },
    });
    // A queued call must find its handler after the window, also in a process that never queued it.
    if (c.classification === 'write' && c.policy === 'queue') {
      this.engine.handle(c.operation.name, async (payload: McpIntentPayload, ctx) => {
        const h = g.handler;
        if (typeof h !== 'function') throw new Error(`tool ${g.name} is not a plain tool handler`);
        const extra = replayExtra(ctx);
        const result = (await (payload.arguments === undefined || payload.arguments === null
          ? h(extra)
          : h(payload.arguments, extra))) as CallToolResult;
        if (result?.isError) {
          const text = result.content?.find((c) => c.type === 'text')?.text;
          throw new Error(`tool ${g.name} returned an error at replay${text ? `: ${text}` : ''}`);
        }
      });
    }
  }

  /** The guard in front of a plain tool handler (one function per tool, made once). */
  guarded(g: GuardedTool): Handler {
    let fn = this.#fns.get(g);
    if (fn) return fn;
    fn = async (...params: unknown[]) => {
      const extra = (params[params.length - 1] ?? {}) as ToolCallExtra;
      const args = params.length > 1 ? params[0] : undefined;
      let op: Operation;
      let d: Decision;
      try {
        const c = g.classification();
        // The principal lets the engine's bypass predicate (operators, service accounts) see the caller.
        const principal = this.#principal(extra);
        op = principal === undefined ? c.operation : { ...c.operation, principal };
        d = this.engine.decide(op);
      } catch (err) {
        return this.#undecided(g.name, err);
      }
      const handler = g.handler as Handler;
      if (d.outcome === 'proceed') {
        if (d.classification === 'read') return this.#timedRead(() => handler(...params));
        const tracked = d.policy === 'allow' ? null : this.engine.track(op);
        try {
          return await handler(...params);
        } finally {
          tracked?.done();
        }
      }
      if (d.outcome === 'enqueue') return this.#enqueue(g, op, d, args, extra);
      return agentToolResult(this.#refusal(g.name, d));
    };
    this.#fns.set(g, fn);
    return fn;
  }

  /** Task-based tools (experimental SDK API): a write is refused or dropped during a window (never queued). */
  guardedTask(g: GuardedTool, createTask: Handler): Handler {
    return async (...params: unknown[]) => {
      const c = g.classification();
      const d = this.engine.decide(c.operation);
      if (d.outcome === 'proceed') return createTask(...params);
      // Without an intent an `enqueue` decision renders as refused: nothing is kept.
      const refusal = this.#refusal(g.name, d);
      throw new Error(refusal.text);
    };
  }

  #refusal(
    tool: string,
    d: Exclude<Decision, { outcome: 'proceed' }>,
    intent?: Parameters<typeof agentRefusal>[0]['intent'],
  ) {
    const w = this.engine.window;
    return agentRefusal({
      decision: d,
      message: w?.message,
      contact: w?.contact,
      tool,
      now: this.engine.clock.now(),
      ...(intent ? { intent } : {}),
    });
  }

  async #enqueue(
    g: GuardedTool,
    op: Operation,
    d: EnqueueDecision,
    args: unknown,
    extra: ToolCallExtra,
  ): Promise<CallToolResult> {
    let key: string | undefined;
    try {
      key = this.options.idempotencyKey
        ? this.options.idempotencyKey(args, extra)
        : (extra._meta?.[IDEMPOTENCY_KEY_META] as string | undefined);
    } catch {
      return agentToolResult(this.#refusal(g.name, d)); // fail closed: nothing kept, nothing run
    }
    const field = this.options.idempotencyKey ? 'idempotencyKey' : `_meta["${IDEMPOTENCY_KEY_META}"]`;
    if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH)) {
      return invalidCallResult(
        'INVALID_INPUT',
        field,
        `The action "${g.name}" was not run and not queued: ${field} must be a non-empty string of at most ${MAX_KEY_LENGTH} characters.`,
      );
    }
    const payload: McpIntentPayload = { tool: g.name, arguments: args ?? null };
    try {
      const { intent, statusUrl } = await this.engine.enqueue(
        key === undefined ? op : { ...op, idempotencyKey: key },
        payload,
      );
      return agentToolResult(
        this.#refusal(g.name, d, { id: intent.id, idempotencyKey: intent.idempotencyKey, statusUrl }),
      );
    } catch (err) {
      if (isQuiesceError(err) && err.code === 'PAYLOAD_TOO_LARGE') {
        return invalidCallResult(
          'PAYLOAD_TOO_LARGE',
          'arguments',
          `The action "${g.name}" was not run and not queued: its arguments are too large to keep (${err.message}).`,
        );
      }
      if (isQuiesceError(err) && err.code === 'IDEMPOTENCY_CONFLICT') {
        return invalidCallResult(
          'IDEMPOTENCY_CONFLICT',
          field,
          `The action "${g.name}" was not run and not queued: its idempotency key was already used for a call with other arguments. Use a new key for a new action.`,
        );
      }
      // The queue could not keep it: say refused (never "queued"), nothing ran.
      return agentToolResult(this.#refusal(g.name, d));
    }
  }

  #principal(extra: ToolCallExtra): string | undefined {
    const p = this.options.principal ? this.options.principal(extra) : extra.authInfo?.clientId;
    return typeof p === 'string' && p !== '' ? p : undefined;
  }

  async #timedRead(run: () => unknown): Promise<unknown> {
    const start = performance.now();
    let error = true;
    try {
      const result = (await run()) as CallToolResult | undefined;
      error = result?.isError === true;
      return result;
    } finally {
      this.engine.reportRead({ surface: 'tool', durationMs: performance.now() - start, error });
    }
  }

  #undecided(tool: string, err: unknown): CallToolResult {
    const text = `The action "${tool}" was not run: the service could not decide whether writes are allowed right now (${errorMessage(err)}). Nothing was changed. Retry later, or tell the user.`;
    return {
      content: [{ type: 'text', text }],
      structuredContent: { code: 'INTERNAL' satisfies QuiesceErrorCode, message: text },
      isError: true,
    };
  }
}
