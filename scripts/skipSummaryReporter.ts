import type { Reporter, TestModule, UserConsoleLog } from 'vitest/node';

/**
 * Repeats, after vitest's own summary, every test that was skipped (grouped by suite, with the reason
 * given to `ctx.skip(reason)` or `// not run:`) and every loud `*** SKIPPED: … ***` notice a suite
 * printed while it was collected, so a run that silently lost coverage cannot look green at a glance.
 * `QUIESCE_REQUIRE_SERVICES=1` turns the service skips into failures instead.
 */
export default class SkipSummaryReporter implements Reporter {
  #notices = new Set<string>();

  onUserConsoleLog(log: UserConsoleLog): void {
    for (const m of log.content.matchAll(/\*\*\* SKIPPED: ([^\n]*?) \*\*\*/g)) this.#notices.add(m[1]!);
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const groups = new Map<string, { count: number; notes: Set<string> }>();
    let total = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const result = test.result();
        if (result.state !== 'skipped') continue;
        total++;
        const where = `${module.project.name}: ${test.parent.type === 'suite' ? test.parent.fullName : module.relativeModuleId}`;
        const group = groups.get(where) ?? { count: 0, notes: new Set<string>() };
        group.count++;
        if (result.note) group.notes.add(result.note);
        else if (test.options.mode === 'skip' && / — not run: /.test(test.name))
          group.notes.add(test.name.split(' — ')[1]!);
        groups.set(where, group);
      }
    }
    if (total === 0 && this.#notices.size === 0) return;
    const lines = [`\n SKIPPED — ${total} test${total === 1 ? '' : 's'} did not run:`];
    for (const [where, { count, notes }] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
      lines.push(`   ${String(count).padStart(3)} × ${where}`);
      for (const note of notes) lines.push(`         - ${note}`);
    }
    for (const notice of this.#notices) lines.push(`   notice: ${notice}`);
    if (process.env.QUIESCE_REQUIRE_SERVICES !== '1') {
      lines.push(
        '   QUIESCE_REQUIRE_SERVICES=1 makes missing services, browsers and the npm registry a failure.',
      );
    }
    console.log(`${lines.join('\n')}\n`);
  }
}
