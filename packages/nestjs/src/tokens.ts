import type { ClassificationRule, QuiesceEngine } from '@quiesce/core';
import type { HttpEnforcer } from '@quiesce/core/http';
import type { GraphqlPolicies } from './graphqlOperation.js';

/**
 * Injection token of the engine: `constructor(@Inject(QUIESCE) engine: QuiesceEngine)`. Explicit
 * because esbuild-based builds (tsup, tsx, vitest) emit no decorator metadata to inject by type.
 */
export const QUIESCE = Symbol.for('quiesce:engine');

/** Injection token of the module's resolved options (internal to the guard and lifecycle). */
export const QUIESCE_MODULE_OPTIONS = Symbol.for('quiesce:nestjs-options');

export interface ResolvedModuleOptions {
  engine: QuiesceEngine;
  ownsEngine: boolean;
  principal: ((request: any) => string | undefined) | undefined;
  inventory: boolean;
  /** Core's decide→act path for HTTP requests, shared by the guard and the early decision. */
  enforcer: HttpEnforcer;
  decideBeforeBody: boolean;
  /** Where the app is mounted in an outer server (`/nest`), or `''`: prefixed to every route path. */
  mountPath: string;
  /** The engine's classification rules when the module created it (for the inventory). */
  rules: readonly ClassificationRule[];
  /** Filled at bootstrap: mutation field → policy, so a mutation is refused whole. */
  graphqlPolicies: GraphqlPolicies;
}

/** Where a decision taken before the body was read waits for the guard, which must agree with it. */
export const kEarlyDecision = Symbol.for('quiesce:nestjs-early-decision');
