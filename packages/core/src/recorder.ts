import type { DecisionNote } from './decider.js';
import type { EngineEmitter } from './events.js';
import type { QuiesceMetrics } from './metrics.js';
import type { Logger } from './notifier.js';
import type { Decision, Operation } from './operation.js';

const COUNTER = { refuse: 'refused', enqueue: 'queued', discard: 'dropped' } as const;

/**
 * Counts, logs and announces (`decision` event) what the decider said about a write it did not
 * simply let through; a plain proceed (no window, a read, an allowed or out-of-scope write) is silent
 * (the engine does not even call it for those: the proceed path stays free of calls).
 */
export class DecisionRecorder {
  constructor(
    private readonly metrics: QuiesceMetrics,
    private readonly log: Logger,
    private readonly events: EngineEmitter,
  ) {}

  record(d: Decision, op: Operation, note: DecisionNote): void {
    if (d.outcome === 'proceed') {
      if (d.reason === 'bypass') {
        this.metrics.count('bypassed', op.surface);
        this.log.info('quiesce: write bypassed the window', {
          operation: op.name,
          surface: op.surface,
          bypass: note.bypass,
        });
      } else if (d.reason === 'dry-run') {
        this.metrics.count('dryRun', op.surface);
        this.log.info('quiesce: dry-run: write would be stopped', {
          operation: op.name,
          surface: op.surface,
          wouldBe: d.wouldBe,
        });
      } else return;
    } else {
      this.metrics.count(COUNTER[d.outcome], op.surface);
      this.log.debug('quiesce: write stopped', {
        operation: op.name,
        surface: op.surface,
        outcome: d.outcome,
      });
    }
    this.events.emit('decision', d, op);
  }
}
