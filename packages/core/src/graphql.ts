/**
 * `@quiesce/core/graphql`: what a GraphQL operation is, as far as a maintenance window cares — its
 * root fields (through fragments, aliases, `@skip`/`@include`), one verdict for the whole
 * operation (the strictest field wins), and the answers (`READ_ONLY_MODE`, `WRITE_QUEUED`,
 * `WRITE_DROPPED`) servers turn into their own `GraphQLError`. Structural over graphql-js's AST:
 * `graphql` stays an optional peer.
 */
import { isQuiesceError, QuiesceError, statusForCode } from './errors.js';
import { type AnyHeaders, bypassTokenFrom, type IdempotencyKeyRule } from './http.js';
import { isTrackedWrite } from './httpEnforcer.js';
import type { Logger } from './notifier.js';
import type {
  Annotation,
  Decision,
  DiscardDecision,
  EnqueueDecision,
  Operation,
  RefuseDecision,
} from './operation.js';
import type { InFlightHandle, QuiesceEngine } from './types.js';

export * from './graphqlDocument.js';

// ------------------------------------------------------------------ the verdict

/** What a GraphQL server turns into its own `GraphQLError`: `extensions.http` sets the response status. */
export interface GraphqlAnswer {
  message: string;
  extensions: {
    code: string;
    http?: { status: number; headers?: Record<string, string> };
    [member: string]: unknown;
  };
}

/** What the schema (directives, decorators) says about one root field. */
export interface GraphqlFieldPolicy {
  annotation?: Annotation;
  /** Schema coordinate (`Mutation.createOrder`), for messages. @default `${operationType} ${field}` */
  coordinate?: string;
  /** Name of a queued field's intent. @default the operation name, `mutation createOrder` */
  intentName?: string;
  /** Where a queued field's key comes from: a rule, or a function of the arguments (wins when it returns one). */
  idempotencyKey?: IdempotencyKeyRule | ((args: Record<string, unknown>) => unknown);
  /** A queued field without a key (function result or header) is answered 400, not given a derived key. */
  keyRequired?: boolean;
  /** The field to name when a required key is missing. @default 'Idempotency-Key' */
  keyField?: string;
}

export interface GraphqlOperationInput {
  operationType: 'query' | 'mutation' | 'subscription';
  /** Response key → field name ({@link rootFields}). */
  fields: ReadonlyMap<string, string>;
  /**
   * A field's policy. For queries and subscriptions only fields with a policy are decided (a query
   * field that writes); every mutation field is.
   */
  policy(field: string): GraphqlFieldPolicy | undefined;
  headers?: AnyHeaders;
  ip?: string;
  /** Called only during a window, for a write. May throw: the operation is refused. */
  principal?: () => string | undefined;
  /** Header with the client's idempotency key. @default 'idempotency-key' */
  idempotencyKeyHeader?: string;
  logger?: Pick<Logger, 'warn'>;
}

/** A root field that does not run: it answers `WRITE_QUEUED` (intent created) or `WRITE_DROPPED`. */
export interface GraphqlStop {
  settle(args: Record<string, unknown>): Promise<GraphqlAnswer>;
}

export interface GraphqlVerdict {
  /** The whole operation is refused before any resolver runs (strictest field wins). */
  readonly refusal: GraphqlAnswer | null;
  /** A tracked write runs: release when execution is over. */
  readonly inFlight: InFlightHandle | null;
  /** The stop for a root field (by response key), when it does not run. */
  stop(key: string): GraphqlStop | undefined;
  /** True when nothing in the operation writes (a read, timed for read health). */
  readonly read: boolean;
}

const NO_STOPS = (): undefined => undefined;
const READ: GraphqlVerdict = Object.freeze({ refusal: null, inFlight: null, stop: NO_STOPS, read: true });

const consoleLogger: Pick<Logger, 'warn'> = { warn: (m, f) => console.warn(m, f ?? '') };

function header(headers: AnyHeaders | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(n: string): string | null }).get(name) ?? undefined;
  }
  const v = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v[0] : v;
}

export function refusalAnswer(d: RefuseDecision, fields?: string[]): GraphqlAnswer {
  return {
    message: d.problem.detail,
    extensions: {
      code: 'READ_ONLY_MODE',
      windowId: d.windowId,
      endsAt: d.endsAt,
      retryAfter: d.retryAfter,
      ...(fields ? { fields } : {}),
      http: {
        status: d.status,
        headers: { 'Retry-After': String(d.retryAfter), 'Cache-Control': 'no-store' },
      },
    },
  };
}

/** A `QuiesceError` (missing key, idempotency conflict) as an answer with its code and status. */
export function errorAnswer(error: QuiesceError): GraphqlAnswer {
  return {
    message: error.message,
    extensions: {
      code: error.code,
      ...(error.field ? { field: error.field } : {}),
      http: { status: statusForCode(error.code) },
    },
  };
}

interface Decided {
  key: string;
  op: Operation;
  decision: Decision;
  policy: GraphqlFieldPolicy | undefined;
}

/**
 * Decide a whole GraphQL operation once: one refused root field refuses all of it (nothing is
 * half-applied); queued and dropped fields get a stop; a tracked write takes its in-flight handle.
 * Any error while deciding refuses the operation and logs why.
 */
export function decideGraphqlOperation(engine: QuiesceEngine, input: GraphqlOperationInput): GraphqlVerdict {
  const { operationType } = input;
  if (operationType === 'subscription') return READ;
  const isMutation = operationType === 'mutation';
  const decided: Decided[] = [];
  let base: Pick<Operation, 'bypassToken' | 'ip' | 'principal'> | undefined;
  try {
    for (const [key, field] of input.fields) {
      const policy = input.policy(field);
      if (!isMutation && policy?.annotation?.classification !== 'write') continue;
      const op: Operation = { surface: 'graphql', name: `${operationType} ${field}`, operationType };
      if (policy?.annotation) op.annotation = policy.annotation;
      if (engine.readOnly) {
        const c = engine.classify(op);
        if (c.classification === 'write' && c.policy !== 'allow') {
          base ??= callerFacts(engine, input);
          Object.assign(op, base);
        }
      }
      decided.push({ key, op, decision: engine.decide(op), policy });
    }
  } catch (error) {
    (input.logger ?? consoleLogger).warn('quiesce: refused a GraphQL operation because deciding it failed', {
      operation: operationType,
      error: error instanceof Error ? error.message : String(error),
    });
    return failClosed(engine, operationType);
  }
  if (decided.length === 0) return READ;

  let refusal: RefuseDecision | undefined;
  const refused: string[] = [];
  let retryAfter = 0;
  for (const d of decided) {
    if (d.decision.outcome !== 'refuse') continue;
    refusal ??= d.decision;
    retryAfter = Math.max(retryAfter, d.decision.retryAfter);
    const coordinate = d.policy?.coordinate ?? d.op.name;
    if (!refused.includes(coordinate)) refused.push(coordinate);
  }
  if (refusal) {
    return {
      refusal: refusalAnswer({ ...refusal, retryAfter }, refused),
      inFlight: null,
      stop: NO_STOPS,
      read: false,
    };
  }
  const stops = new Map<string, GraphqlStop>();
  const queued = decided.filter((d) => d.decision.outcome === 'enqueue').length;
  let tracked: Operation | undefined;
  for (const d of decided) {
    if (d.decision.outcome === 'enqueue' || d.decision.outcome === 'discard') {
      stops.set(
        d.key,
        stopFor(engine, input, d as Decided & { decision: EnqueueDecision | DiscardDecision }, queued > 1),
      );
    } else if (tracked === undefined && isTrackedWrite(d.decision)) {
      tracked = d.op;
    }
  }
  return {
    refusal: null,
    inFlight: tracked ? engine.track(tracked) : null,
    stop: stops.size > 0 ? (key) => stops.get(key) : NO_STOPS,
    read: false,
  };
}

function callerFacts(
  engine: QuiesceEngine,
  input: GraphqlOperationInput,
): Pick<Operation, 'bypassToken' | 'ip' | 'principal'> {
  const o = engine.options;
  const facts: Pick<Operation, 'bypassToken' | 'ip' | 'principal'> = {};
  if (input.headers) {
    const token = bypassTokenFrom(input.headers, { header: o.bypassHeader, cookie: o.bypassCookie });
    if (token) facts.bypassToken = token;
  }
  if (input.ip) facts.ip = input.ip;
  if (input.principal) {
    const p = input.principal();
    if (p !== undefined && typeof p !== 'string')
      throw new TypeError(`the principal function returned ${typeof p}`);
    if (p !== undefined) facts.principal = p;
  }
  return facts;
}

function failClosed(engine: QuiesceEngine, operationType: string): GraphqlVerdict {
  let d: Decision | undefined;
  try {
    d = engine.decide({
      surface: 'graphql',
      name: `${operationType} (undecidable)`,
      annotation: { classification: 'write', policy: 'block' },
    });
  } catch {
    d = undefined;
  }
  const w = engine.window;
  const refusal: RefuseDecision =
    d?.outcome === 'refuse'
      ? d
      : {
          outcome: 'refuse',
          classification: 'write',
          policy: 'block',
          status: engine.options.refusalStatus,
          retryAfter: 5,
          windowId: w?.id ?? '',
          endsAt: w?.endsAt ?? null,
          problem: {
            type: 'https://quiesce.dev/problems/read-only-mode',
            title: 'Service is in read-only mode',
            status: engine.options.refusalStatus,
            detail:
              w?.message ??
              'This operation could not be checked against the maintenance policy; try again shortly.',
            code: 'READ_ONLY_MODE',
          },
        };
  return { refusal: refusalAnswer(refusal), inFlight: null, stop: NO_STOPS, read: false };
}

function stopFor(
  engine: QuiesceEngine,
  input: GraphqlOperationInput,
  d: Decided & { decision: EnqueueDecision | DiscardDecision },
  scoped: boolean,
): GraphqlStop {
  const coordinate = d.policy?.coordinate ?? d.op.name;
  return {
    async settle(args) {
      const decision = d.decision;
      if (decision.outcome === 'discard') {
        return {
          message: `${coordinate} was discarded: writes are paused for maintenance and this one is not kept.`,
          extensions: { code: 'WRITE_DROPPED', windowId: decision.windowId, endsAt: decision.endsAt },
        };
      }
      try {
        const key = idempotencyKey(input, d, args, scoped);
        // What is replayed is what a durable queue can store: the arguments as JSON.
        const payload = JSON.parse(JSON.stringify(args)) as unknown;
        const { intent, statusUrl, created } = await engine.enqueue(
          key === undefined ? d.op : { ...d.op, idempotencyKey: key },
          payload,
          { name: d.policy?.intentName ?? d.op.name },
        );
        return {
          message: `${coordinate} was queued as write intent ${intent.id}: writes are paused for maintenance and it will be applied when they resume.`,
          extensions: {
            code: 'WRITE_QUEUED',
            intentId: intent.id,
            idempotencyKey: intent.idempotencyKey,
            statusUrl,
            created,
            windowId: decision.windowId,
            endsAt: decision.endsAt,
            retryAfter: decision.retryAfter,
            http: { status: 202 },
          },
        };
      } catch (error) {
        if (isQuiesceError(error) && statusForCode(error.code) < 500) return errorAnswer(error);
        // Not acknowledged, so nothing is lost: refuse rather than answer a server error.
        (input.logger ?? consoleLogger).warn('quiesce: could not queue a GraphQL write; refused it', {
          field: coordinate,
          error: error instanceof Error ? error.message : String(error),
        });
        return failClosed(engine, input.operationType).refusal!;
      }
    },
  };
}

function idempotencyKey(
  input: GraphqlOperationInput,
  d: Decided,
  args: Record<string, unknown>,
  scoped: boolean,
): string | undefined {
  const source = d.policy?.idempotencyKey;
  let key: string | undefined;
  if (typeof source === 'function') {
    const v = source(args);
    if (v !== undefined && v !== null && v !== '') key = String(v);
  }
  const rule = typeof source === 'function' ? undefined : source;
  if (key === undefined && rule !== 'content') {
    const h = header(input.headers, input.idempotencyKeyHeader ?? 'idempotency-key')
      ?.trim()
      .replace(/^"(.*)"$/, '$1');
    // Several queued fields share the request's header: each gets its own key.
    if (h) key = scoped ? `${h}:${d.key}` : h;
  }
  const headerName = input.idempotencyKeyHeader ?? 'idempotency-key';
  if (key === undefined && (rule === 'header' || d.policy?.keyRequired === true)) {
    throw new QuiesceError(
      'IDEMPOTENCY_KEY_REQUIRED',
      `${d.policy?.coordinate ?? d.op.name} is queued during maintenance and needs an idempotency key: give ${d.policy?.keyField ? `argument ${d.policy.keyField} or ` : ''}the ${headerName} header`,
      { field: d.policy?.keyField ?? headerName },
    );
  }
  if (key !== undefined && key.length > 255) {
    throw new QuiesceError('INVALID_INPUT', 'Idempotency-Key: at most 255 characters', {
      field: 'Idempotency-Key',
    });
  }
  return key;
}
