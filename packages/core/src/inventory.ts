import type { Classification, Policy, Surface } from './operation.js';

/** One registered write surface, as adapters report it. */
export interface InventoryEntry {
  surface: Surface;
  name: string;
  method?: string;
  path?: string;
  queue?: string;
  classification: Classification;
  policy: Policy;
  /** True when someone decided this surface's policy (a helper, decorator, directive or rule). */
  explicit: boolean;
  /** Which adapter reported it (`express`, `nestjs`, `graphql-yoga`, `pg-boss`, `cron`, `tool`). */
  source: string;
  details?: Record<string, unknown>;
}

/** Entries keyed by surface + name so re-registration replaces rather than duplicates. */
export class Inventory {
  readonly #entries = new Map<string, InventoryEntry>();

  register(entry: InventoryEntry): void {
    this.#entries.set(`${entry.surface}\u0000${entry.name}`, entry);
  }

  list(): InventoryEntry[] {
    return [...this.#entries.values()].sort(
      (a, b) => a.surface.localeCompare(b.surface) || a.name.localeCompare(b.name),
    );
  }

  /** Write surfaces nobody decided a policy for: what `quiesce inventory --fail-on-unclassified` fails on. */
  unclassified(): InventoryEntry[] {
    return this.list().filter((e) => e.classification === 'write' && !e.explicit);
  }
}
