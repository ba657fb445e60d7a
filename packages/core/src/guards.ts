import { agentRefusal } from './agentRefusal.js';
import { QuiesceError } from './errors.js';
import { errorMessage } from './events.js';
import type { Logger } from './notifier.js';
import type { Decision, Operation, Policy, Surface } from './operation.js';
import type { GuardJobOptions, GuardToolOptions, QuiesceEngine, ToolRefusal } from './types.js';

/** What a job guard needs besides the public engine API: a logger, and word when writes come back on. */
export interface JobGuardHost {
  log: Logger;
  /** Called each time this instance may start writes again (the window thawed, the lease renewed). */
  onWritable(listener: () => void): () => void;
}

/** An agent tool that is refused during a window (unless read-only), tracked while it writes. */
export function guardTool<A extends unknown[], R>(
  engine: QuiesceEngine,
  name: string,
  fn: (...args: A) => R | Promise<R>,
  options: GuardToolOptions = {},
): (...args: A) => Promise<R | ToolRefusal> {
  const op = guardedOperation('tool', name, options.readOnly, options.policy);
  engine.register({
    surface: 'tool',
    name: op.name,
    classification: options.readOnly ? 'read' : 'write',
    policy: options.readOnly ? 'allow' : (options.policy ?? 'block'),
    explicit: options.readOnly !== undefined || options.policy !== undefined,
    source: 'tool',
  });
  return async (...args: A): Promise<R | ToolRefusal> => {
    const d = engine.decide(op);
    if (d.outcome !== 'proceed') {
      // [agent refusal: what an agent is told comes from core/agentRefusal.ts (owner: mcp helper, #19)]
      const r = agentRefusal({
        decision: d,
        message: messageOf(engine, d),
        contact: engine.window?.contact,
        tool: name,
        now: engine.clock.now(),
      });
      return { ok: false, refused: true, ...r, endsAt: r.windowEndsAt, retryAfter: r.retryAfterSeconds };
      // [/agent refusal]
    }
    const h = d.classification === 'write' ? engine.track(op) : null;
    try {
      return await fn(...args);
    } finally {
      h?.done();
    }
  };
}

/** The message a stopped write was given: the refusal's, or the window's it names. */
function messageOf(engine: QuiesceEngine, d: Exclude<Decision, { outcome: 'proceed' }>): string | undefined {
  if (d.outcome === 'refuse') return d.problem.detail;
  const w = engine.window;
  return w && w.id === d.windowId ? w.message : undefined;
}

/** A scheduled job (cron tick) that is skipped during a window; missed ticks follow `options.missed`. */
export function guardJob<A extends unknown[]>(
  engine: QuiesceEngine,
  host: JobGuardHost,
  name: string,
  fn: (...args: A) => unknown,
  options: GuardJobOptions = {},
): (...args: A) => Promise<void> {
  const missed = options.missed ?? 'skip';
  if (!['skip', 'coalesce', 'replay'].includes(missed)) {
    throw new QuiesceError(
      'INVALID_INPUT',
      `guardJob(${name}): missed must be skip, coalesce or replay, got "${missed}"`,
      { field: 'missed' },
    );
  }
  const op = guardedOperation('cron', name, options.readOnly, undefined);
  engine.register({
    surface: 'cron',
    name: op.name,
    classification: options.readOnly ? 'read' : 'write',
    policy: options.readOnly ? 'allow' : 'block',
    explicit: options.readOnly !== undefined || options.missed !== undefined,
    source: options.source ?? 'cron',
    details: { missed },
  });
  const pending: A[] = [];
  const run = async (args: A) => {
    const h = engine.track(op);
    try {
      await fn(...args);
    } finally {
      h.done();
    }
  };
  host.onWritable(() => {
    const ticks = pending.splice(0);
    if (ticks.length === 0 || missed === 'skip') return;
    const toRun = missed === 'coalesce' ? [ticks[ticks.length - 1]!] : ticks;
    host.log.info(`quiesce: running ${toRun.length} missed tick(s) of ${name}`, {
      missed: ticks.length,
      policy: missed,
    });
    void (async () => {
      for (const args of toRun)
        await run(args).catch((err) =>
          host.log.error(`quiesce: missed tick of ${name} failed`, { error: errorMessage(err) }),
        );
    })();
  });
  return async (...args: A): Promise<void> => {
    const d = engine.decide(op);
    if (d.outcome !== 'proceed') {
      if (missed !== 'skip') pending.push(args);
      host.log.info(`quiesce: tick of ${name} skipped during the window`, { missed });
      return;
    }
    await run(args);
  };
}

function guardedOperation(
  surface: Surface,
  name: string,
  readOnly: boolean | undefined,
  policy: Policy | undefined,
): Operation {
  if (!name) throw new QuiesceError('INVALID_INPUT', `guard: name is required`, { field: 'name' });
  return {
    surface,
    name: `${surface} ${name}`,
    ...(readOnly
      ? { annotation: { classification: 'read' as const } }
      : policy
        ? { annotation: { classification: 'write' as const, policy } }
        : {}),
  };
}
