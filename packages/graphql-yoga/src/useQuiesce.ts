import type {
  Decision,
  DiscardDecision,
  EnqueueDecision,
  InFlightHandle,
  Operation,
  QuiesceEngine,
} from '@quiesce/core';
import { isQuiesceError, QuiesceError, statusForCode } from '@quiesce/core';
import { operationFromHttp } from '@quiesce/core/http';
import type { GraphQLFieldResolver, GraphQLSchema } from 'graphql';
import { createGraphQLError, type Plugin, type YogaInitialContext } from 'graphql-yoga';
import { readSchemaWrites, type WriteField } from './directives.js';
import { rootFields, selectOperation } from './rootFields.js';

/** The Yoga context as the option callbacks see it: Yoga's initial context plus the server's and the app's. */
export type QuiesceYogaContext = YogaInitialContext & Record<string, any>;

export interface QuiesceYogaOptions {
  /** Who is calling: for the principal bypass and the intent record. Never put credentials here. */
  principal?: (context: QuiesceYogaContext) => string | undefined;
  /**
   * The client's address, for the CIDR bypass allowlist.
   * @default the socket address of the node request when Yoga runs on `node:http` (`context.req`)
   */
  ip?: (context: QuiesceYogaContext) => string | undefined;
  /** Header carrying a bypass token. @default 'x-quiesce-bypass' */
  bypassHeader?: string;
  /** Cookie carrying a bypass token. @default 'quiesce_bypass' */
  bypassCookie?: string;
  /**
   * Header with the client's idempotency key for queued fields whose directive gives no `key`.
   * @default 'idempotency-key'
   */
  idempotencyKeyHeader?: string;
  /**
   * A queued field with no key (neither `key` argument value nor header) is answered
   * `IDEMPOTENCY_KEY_REQUIRED` (400) instead of getting a key derived from its arguments. @default false
   */
  requireIdempotencyKey?: boolean;
  /**
   * Name of the write intent of a queued field: the name its replay handler is registered under
   * (`engine.handle(name, …)`). @default the schema coordinate, `Mutation.createOrder`
   */
  intentName?: (field: { typeName: string; fieldName: string; coordinate: string }) => string;
  /** Report each query's execution time and errors to the engine's read-health watcher. @default true */
  reportReads?: boolean;
}

/** A field decided `enqueue` or `discard`: its resolver does not run. */
interface Stop {
  decision: EnqueueDecision | DiscardDecision;
  op: Operation;
  coordinate: string;
  keyPath: readonly string[] | undefined;
  intentName: string;
  /** Set when the operation queues several fields: the header key is then scoped per field. */
  scope: string | undefined;
}

interface Plan {
  mutationTypeName: string | undefined;
  /** Static operations of the root fields, by operation type then field name. */
  mutation: Map<string, { op: Operation; field: WriteField }>;
  query: Map<string, { op: Operation; field: WriteField | undefined }>;
  hasWritingQueries: boolean;
}

interface BatchMark {
  total: number;
  refused: number;
  status: number;
  retryAfter: number;
}

function defaultIp(context: QuiesceYogaContext): string | undefined {
  return context.req?.socket?.remoteAddress;
}

function checkOptions(engine: QuiesceEngine, options: QuiesceYogaOptions) {
  if (!engine || typeof engine.decide !== 'function' || typeof engine.track !== 'function') {
    throw new QuiesceError(
      'INVALID_INPUT',
      'useQuiesce(engine): engine must be a QuiesceEngine from createQuiesce()',
      {
        field: 'engine',
      },
    );
  }
  if (options === null || typeof options !== 'object') {
    throw new QuiesceError('INVALID_INPUT', 'useQuiesce(engine, options): options must be an object', {
      field: 'options',
    });
  }
  for (const k of ['principal', 'ip', 'intentName'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'function') {
      throw new QuiesceError('INVALID_INPUT', `useQuiesce: options.${k} must be a function`, { field: k });
    }
  }
  for (const k of ['bypassHeader', 'bypassCookie', 'idempotencyKeyHeader'] as const) {
    const v = options[k];
    if (v !== undefined && (typeof v !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v))) {
      throw new QuiesceError(
        'INVALID_INPUT',
        `useQuiesce: options.${k} must be a header or cookie name, got ${JSON.stringify(v)}`,
        {
          field: k,
        },
      );
    }
  }
  for (const k of ['requireIdempotencyKey', 'reportReads'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'boolean') {
      throw new QuiesceError('INVALID_INPUT', `useQuiesce: options.${k} must be a boolean`, { field: k });
    }
  }
}

const isAsyncIterable = (v: any): boolean => v != null && typeof v[Symbol.asyncIterator] === 'function';
const isPromiseLike = (v: any): v is PromiseLike<unknown> => v != null && typeof v.then === 'function';

/** graphql-js's default resolver, for root fields without their own. */
const defaultResolve: GraphQLFieldResolver<any, any> = (source, args, context, info) => {
  if (source !== null && (typeof source === 'object' || typeof source === 'function')) {
    const value = source[info.fieldName];
    return typeof value === 'function' ? value.call(source, args, context, info) : value;
  }
  return undefined;
};

function keyFromArgs(args: Record<string, unknown>, path: readonly string[] | undefined): string | undefined {
  if (!path) return undefined;
  let v: unknown = args;
  for (const segment of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[segment];
  }
  return v === null || v === undefined || v === '' ? undefined : String(v);
}

/**
 * A GraphQL error that answers rather than reports a fault (refused, queued, dropped): built without
 * a stack trace, which would say nothing and is most of the cost of a refusal.
 */
function answer(message: string, options: Parameters<typeof createGraphQLError>[1]) {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return createGraphQLError(message, options);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** A `QuiesceError` as a GraphQL error: its code, and its status from core's table. */
function graphqlErrorFrom(error: QuiesceError) {
  return answer(error.message, {
    extensions: {
      code: error.code,
      ...(error.field ? { field: error.field } : {}),
      http: { status: statusForCode(error.code) },
    },
  });
}

/**
 * The Yoga (envelop) plugin. During a read-only window every root field of an operation is decided by
 * the engine; one refused field refuses the whole operation before any resolver runs. Queued and
 * dropped fields answer without running their resolver. Outside a window mutations are tracked in
 * flight so the window reaches `frozen` only once they are done.
 */
export function useQuiesce(engine: QuiesceEngine, options: QuiesceYogaOptions = {}): Plugin {
  checkOptions(engine, options);
  const principalOf = options.principal;
  const ipOf = options.ip ?? defaultIp;
  const bypassHeader = (options.bypassHeader ?? 'x-quiesce-bypass').toLowerCase();
  const bypassCookie = options.bypassCookie ?? 'quiesce_bypass';
  const keyHeader = options.idempotencyKeyHeader ?? 'idempotency-key';
  const requireKey = options.requireIdempotencyKey ?? false;
  const intentNameOf = options.intentName ?? ((f) => f.coordinate);
  const reportReads = options.reportReads ?? true;

  const plans = new WeakMap<GraphQLSchema, Plan>();
  /** Per execution context: response key → the field's stop, read by the wrapped root resolvers. */
  const stops = new WeakMap<object, Map<string, Stop>>();
  /** Per request during a window: how many operations it executed and how many were refused. */
  const batches = new WeakMap<object, BatchMark>();

  // Runs in place of a stopped field's resolver. What it throws, graphql-js locates at the field
  // (path, locations), so the field is null and the error says why.
  async function settle(stop: Stop, args: Record<string, unknown>, context: QuiesceYogaContext) {
    const d = stop.decision;
    if (d.outcome === 'discard') {
      throw answer(
        `${stop.coordinate} was discarded: writes are paused for maintenance and this one is not kept.`,
        { extensions: { code: 'WRITE_DROPPED', windowId: d.windowId, endsAt: d.endsAt } },
      );
    }
    let key = keyFromArgs(args, stop.keyPath);
    if (key === undefined) {
      const header = context.request?.headers
        ?.get(keyHeader)
        ?.trim()
        .replace(/^"(.*)"$/, '$1');
      if (header) key = stop.scope === undefined ? header : `${header}:${stop.scope}`;
    }
    if (key === undefined && requireKey) {
      const where = stop.keyPath
        ? `argument ${stop.keyPath.join('.')} or the ${keyHeader} header`
        : `the ${keyHeader} header`;
      throw graphqlErrorFrom(
        new QuiesceError(
          'IDEMPOTENCY_KEY_REQUIRED',
          `${stop.coordinate} is queued during maintenance and needs an idempotency key: give ${where}`,
          {
            field: stop.keyPath?.join('.') ?? keyHeader,
          },
        ),
      );
    }
    // What is replayed is what a durable queue can store: the arguments as JSON.
    const payload = JSON.parse(JSON.stringify(args)) as unknown;
    let queued: Awaited<ReturnType<QuiesceEngine['enqueue']>>;
    try {
      queued = await engine.enqueue(
        key === undefined ? stop.op : { ...stop.op, idempotencyKey: key },
        payload,
        {
          name: stop.intentName,
        },
      );
    } catch (error) {
      if (isQuiesceError(error)) throw graphqlErrorFrom(error);
      throw error;
    }
    const { intent, statusUrl, created } = queued;
    throw answer(
      `${stop.coordinate} was queued as write intent ${intent.id}: writes are paused for maintenance and it will be applied when they resume.`,
      {
        extensions: {
          code: 'WRITE_QUEUED',
          intentId: intent.id,
          idempotencyKey: intent.idempotencyKey,
          statusUrl,
          created,
          windowId: d.windowId,
          endsAt: d.endsAt,
          retryAfter: d.retryAfter,
          http: { status: 202 },
        },
      },
    );
  }

  function wrap(field: { resolve?: GraphQLFieldResolver<any, any> | undefined }) {
    const original = field.resolve ?? defaultResolve;
    field.resolve = function quiesceRoot(source, args, context, info) {
      const stop = stops.get(context)?.get(info.path.key as string);
      if (stop !== undefined) return settle(stop, args, context);
      return original.call(this, source, args, context, info);
    };
  }

  function planFor(schema: GraphQLSchema): Plan {
    let plan = plans.get(schema);
    if (plan) return plan;
    const writes = readSchemaWrites(schema);
    plan = {
      mutationTypeName: writes.mutationTypeName,
      mutation: new Map(),
      query: new Map(),
      hasWritingQueries: false,
    };
    const register = (field: WriteField, op: Operation, intentName: string) =>
      engine.register({
        surface: 'graphql',
        name: op.name,
        classification: 'write',
        policy: field.policy ?? 'block',
        explicit: field.policy !== undefined,
        source: 'graphql-yoga',
        details: {
          coordinate: field.coordinate,
          ...(field.keyPath ? { key: field.keyPath.join('.') } : {}),
          intentName,
        },
      });
    for (const [type, kind] of [
      [schema.getMutationType(), 'mutation'],
      [schema.getQueryType(), 'query'],
    ] as const) {
      if (!type) continue;
      for (const f of Object.values(type.getFields())) {
        const field = kind === 'mutation' ? writes.mutation.get(f.name) : writes.writingQueries.get(f.name);
        const op: Operation = { surface: 'graphql', name: `${kind} ${f.name}`, operationType: kind };
        if (field) {
          if (kind === 'query' || field.policy)
            op.annotation = { classification: 'write', ...(field.policy ? { policy: field.policy } : {}) };
          register(field, op, intentNameOf(field));
        }
        if (kind === 'mutation') plan.mutation.set(f.name, { op, field: field! });
        else plan.query.set(f.name, { op, field });
        if (kind === 'query' && field) plan.hasWritingQueries = true;
        wrap(f);
      }
    }
    plans.set(schema, plan);
    return plan;
  }

  /** Bypass facts of the request, read once per operation during a window. */
  function requestFacts(context: QuiesceYogaContext): Pick<Operation, 'bypassToken' | 'ip' | 'principal'> {
    const headers: Headers | undefined = context?.request?.headers;
    const bag: Record<string, string | undefined> = {};
    if (headers) {
      bag.cookie = headers.get('cookie') ?? undefined;
      bag[bypassHeader] = headers.get(bypassHeader) ?? undefined;
    }
    const ip = context ? ipOf(context) : undefined;
    const principal = context && principalOf ? principalOf(context) : undefined;
    const facts = { method: 'POST', path: '/', headers: bag, ip, principal };
    let http: Operation;
    try {
      http = operationFromHttp(facts, { bypassHeader, bypassCookie });
    } catch {
      // A cookie that is not valid percent-encoding makes core throw (URIError): treat it as absent.
      http = operationFromHttp(
        { ...facts, headers: { [bypassHeader]: bag[bypassHeader] } },
        { bypassHeader, bypassCookie },
      );
    }
    return { bypassToken: http.bypassToken, ip: http.ip, principal: http.principal };
  }

  function timeRead() {
    const start = performance.now();
    return {
      onExecuteDone({ result }: { result: any }) {
        if (isAsyncIterable(result)) return;
        engine.reportRead({
          surface: 'graphql',
          durationMs: performance.now() - start,
          error: !!result?.errors?.length,
        });
      },
    };
  }

  return {
    onSchemaChange({ schema }) {
      // Reads the directives at start: invalid use fails createYoga(), not a request.
      planFor(schema);
    },

    onExecute({ args, context: executionContext, setResultAndStopExecution, setExecuteFn, executeFn }) {
      const operation = selectOperation(args.document, args.operationName);
      if (operation === undefined || operation.operation === 'subscription') return;
      const plan = planFor(args.schema);
      const readOnly = engine.readOnly;
      const isMutation = operation.operation === 'mutation';
      if (!isMutation && !readOnly && !plan.hasWritingQueries) return reportReads ? timeRead() : undefined;

      const fields = rootFields(args.document, operation, args.variableValues as Record<string, unknown>);
      let firstWrite: Operation | undefined;
      for (const name of fields.values()) {
        const entry = isMutation ? plan.mutation.get(name) : plan.query.get(name);
        if (entry?.field) {
          firstWrite = entry.op;
          break;
        }
      }

      // The object the resolvers receive (envelop substitutes `{}` when no context was given).
      const context = executionContext as QuiesceYogaContext;
      if (readOnly) {
        const facts = requestFacts(context);
        let refused: string[] | undefined;
        let refusal: Extract<Decision, { outcome: 'refuse' }> | undefined;
        let retryAfter = 0;
        let fieldStops: Map<string, Stop> | undefined;
        let queuedCount = 0;
        for (const [key, name] of fields) {
          const entry = isMutation ? plan.mutation.get(name) : plan.query.get(name);
          if (!entry) continue;
          const op: Operation = { ...entry.op, ...facts };
          const d = engine.decide(op);
          const coordinate =
            entry.field?.coordinate ?? `${isMutation ? plan.mutationTypeName : 'Query'}.${name}`;
          if (d.outcome === 'refuse') {
            refused ??= [];
            if (!refused.includes(coordinate)) refused.push(coordinate);
            refusal ??= d;
            retryAfter = Math.max(retryAfter, d.retryAfter);
          } else if (d.outcome === 'enqueue' || d.outcome === 'discard') {
            if (d.outcome === 'enqueue') queuedCount++;
            fieldStops ??= new Map();
            fieldStops.set(key, {
              decision: d,
              op,
              coordinate,
              keyPath: entry.field?.keyPath,
              intentName: entry.field ? intentNameOf(entry.field) : coordinate,
              scope: undefined,
            });
          }
        }
        // Per request, how many operations ran and how many were refused: a batch shares its request.
        const request = context.request;
        let mark: BatchMark | undefined;
        if (request) {
          mark = batches.get(request);
          if (!mark) {
            mark = { total: 0, refused: 0, status: 0, retryAfter: 0 };
            batches.set(request, mark);
          }
          mark.total++;
        }
        if (refusal && refused) {
          if (mark) {
            mark.refused++;
            mark.status = refusal.status;
            mark.retryAfter = Math.max(mark.retryAfter, retryAfter);
          }
          // Strictest wins: one refused field refuses the whole operation, so nothing is half-applied.
          setResultAndStopExecution({
            errors: [
              answer(refusal.problem.detail, {
                extensions: {
                  code: 'READ_ONLY_MODE',
                  windowId: refusal.windowId,
                  endsAt: refusal.endsAt,
                  retryAfter,
                  fields: refused,
                  http: {
                    status: refusal.status,
                    headers: { 'Retry-After': String(retryAfter), 'Cache-Control': 'no-store' },
                  },
                },
              }),
            ],
          });
          return;
        }
        if (fieldStops) {
          if (queuedCount > 1)
            for (const [key, stop] of fieldStops) if (stop.decision.outcome === 'enqueue') stop.scope = key;
          stops.set(context, fieldStops);
        }
        if (firstWrite === undefined) {
          if (fieldStops === undefined) return reportReads && !isMutation ? timeRead() : undefined;
          firstWrite = fieldStops.values().next().value!.op;
        }
      } else if (firstWrite === undefined) {
        return reportReads && !isMutation ? timeRead() : undefined;
      }

      // A write runs (or is queued): count it in flight until execution settles, however it settles.
      const handle: InFlightHandle = engine.track(firstWrite);
      let open = true;
      const release = () => {
        if (open) {
          open = false;
          stops.delete(context);
          handle.done();
        }
      };
      setExecuteFn((a) => {
        try {
          const r = executeFn(a);
          return isPromiseLike(r)
            ? Promise.resolve(r).catch((error: unknown) => {
                release();
                throw error;
              })
            : r;
        } catch (error) {
          release();
          throw error;
        }
      });
      return {
        onExecuteDone({ result }) {
          if (isAsyncIterable(result)) return { onEnd: release };
          release();
          return undefined;
        },
      };
    },

    onResponse({ request, response, setResponse, fetchAPI }) {
      // Yoga sets a single operation's status from its error; a batch answers 200 whatever its
      // entries say, so a batch refused whole gets the refusal status here, a partly refused one
      // keeps 200 and each refused entry carries its own READ_ONLY_MODE error.
      const mark = batches.get(request);
      if (!mark || mark.refused === 0) return;
      // A single operation: Yoga already answered with the refusal's status and headers.
      if (mark.refused === mark.total && response.status === mark.status) return;
      const headers = new fetchAPI.Headers(response.headers);
      headers.set('Retry-After', String(mark.retryAfter));
      headers.set('Cache-Control', 'no-store');
      const status = mark.refused === mark.total ? mark.status : response.status;
      setResponse(new fetchAPI.Response(response.body, { status, headers }));
    },
  };
}
