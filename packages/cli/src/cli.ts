import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import type { EngineStatus } from '@quiesce/core';
import { CliError, EXIT, type ExitCode } from './cliError.js';
import type { BeginRequest, Controller } from './controller.js';
import { formatDuration, parseDuration, parseTime } from './duration.js';
import { createHttpController, parseBaseUrl } from './httpController.js';
import {
  auditLines,
  closedSummary,
  frozenSummary,
  intentLines,
  inventoryLines,
  progressLine,
  reached,
  statusKey,
  statusLines,
  windowLines,
} from './render.js';
import { createStoreController, parseStoreUrl } from './storeController.js';

export interface CliIo {
  stdout: { write(chunk: string): unknown; isTTY?: boolean };
  stderr: { write(chunk: string): unknown };
  env: Record<string, string | undefined>;
  /** Stops `status --watch` and other waits (the bin wires SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

type Values = Record<string, string | boolean | undefined>;
type Spec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

const TARGET: Spec = {
  url: { type: 'string' },
  token: { type: 'string' },
  store: { type: 'string' },
  schema: { type: 'string' },
  key: { type: 'string' },
  prefix: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const COMMANDS: Record<string, { spec: Spec; positionals: number; summary: string }> = {
  begin: {
    summary:
      'begin --reason … --message … (--for 30m | --until <time> | --open-ended) [--at <time>] [--contact …] [--rollback-plan …] [--auto-end] [--no-wait] [--timeout 2m] [--drain-deadline 30s]',
    positionals: 0,
    spec: {
      reason: { type: 'string' },
      message: { type: 'string' },
      for: { type: 'string' },
      until: { type: 'string' },
      'open-ended': { type: 'boolean' },
      at: { type: 'string' },
      contact: { type: 'string' },
      'rollback-plan': { type: 'string' },
      'auto-end': { type: 'boolean' },
      actor: { type: 'string' },
      'no-wait': { type: 'boolean' },
      timeout: { type: 'string' },
      'drain-deadline': { type: 'string' },
    },
  },
  extend: {
    summary: 'extend (--by 15m | --until <time>) [--message …]',
    positionals: 0,
    spec: {
      by: { type: 'string' },
      until: { type: 'string' },
      message: { type: 'string' },
      actor: { type: 'string' },
    },
  },
  end: {
    summary: 'end [--reason …] [--message …] [--no-wait] [--timeout 10m] [--soak 10s] [--force]',
    positionals: 0,
    spec: {
      reason: { type: 'string' },
      message: { type: 'string' },
      actor: { type: 'string' },
      // fencing (#12): close a window stuck in any phase, audited
      force: { type: 'boolean' },
      'no-wait': { type: 'boolean' },
      timeout: { type: 'string' },
      soak: { type: 'string' },
    },
  },
  status: {
    summary: 'status [--watch] [--interval 1s] [--json]',
    positionals: 0,
    spec: { watch: { type: 'boolean', short: 'w' }, interval: { type: 'string' } },
  },
  inventory: {
    summary: 'inventory [--fail-on-unclassified] [--json]',
    positionals: 0,
    spec: { 'fail-on-unclassified': { type: 'boolean' } },
  },
  intents: {
    summary: 'intents [<intent id>] [--status queued|replaying|applied|failed] [--limit 100] [--json]',
    positionals: 1,
    spec: { status: { type: 'string' }, limit: { type: 'string' } },
  },
  audit: {
    summary: 'audit [--limit 50] [--window <id>] [--json]',
    positionals: 0,
    spec: { limit: { type: 'string' }, window: { type: 'string' } },
  },
};

export const USAGE = `quiesce — read-only mode and maintenance windows

Usage: quiesce <command> [options]

Commands:
${Object.values(COMMANDS)
  .map((c) => `  quiesce ${c.summary}`)
  .join('\n')}

Target (one of):
  --url <http://host/quiesce> --token <admin token>   the app's admin API (env QUIESCE_URL, QUIESCE_TOKEN)
  --store <postgres://…|redis://…|file:./state.json>   the state store itself (env QUIESCE_STORE)
      [--schema quiesce] [--key default] (postgres)  [--prefix quiesce:] (redis)

Durations: 90s, 30m, 1h30m, 2h, 1d.  Times: ISO 8601 with a zone, e.g. 2026-11-23T14:30:00Z.
--json prints machine-readable output on stdout.

Exit codes: 0 ok · 1 unexpected failure · 2 bad usage or input · 3 app or store unreachable ·
4 token missing or refused · 5 conflicts with the current state (no window, one already open, not found) ·
6 unclassified write surfaces (inventory --fail-on-unclassified) · 7 frozen with stragglers named ·
8 timed out waiting`;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

function str(v: Values, name: string): string | undefined {
  const x = v[name];
  if (typeof x !== 'string') return undefined;
  if (x.trim() === '') throw new CliError(EXIT.usage, `--${name}: must not be empty`, { field: `--${name}` });
  return x;
}

function parse(command: string, argv: string[]) {
  const def = COMMANDS[command]!;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...TARGET, ...def.spec },
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length > def.positionals) {
      throw new CliError(
        EXIT.usage,
        `${command}: unexpected argument "${positionals[def.positionals]}"; usage: quiesce ${def.summary}`,
      );
    }
    return { values: values as Values, positionals };
  } catch (err) {
    if (err instanceof CliError) throw err;
    const e = err as Error & { code?: string };
    const flag = /'(-[^']+)'/.exec(e.message)?.[1];
    throw new CliError(EXIT.usage, `${command}: ${e.message.split('. ')[0]}; usage: quiesce ${def.summary}`, {
      ...(flag ? { field: flag } : {}),
    });
  }
}

async function openController(v: Values, env: CliIo['env'], command: string): Promise<Controller> {
  const url = str(v, 'url') ?? (v.store === undefined ? env.QUIESCE_URL || undefined : undefined);
  const store = str(v, 'store') ?? (v.url === undefined ? env.QUIESCE_STORE || undefined : undefined);
  if (url && store) {
    throw new CliError(EXIT.usage, 'give either --url (the app) or --store (the state store), not both', {
      field: '--store',
    });
  }
  if (!url && !store) {
    throw new CliError(
      EXIT.usage,
      `${command}: say where the state is: --url http://host/quiesce --token … (or QUIESCE_URL/QUIESCE_TOKEN), or --store postgres://…|redis://…|file:./state.json`,
      { field: '--url' },
    );
  }
  for (const f of ['schema', 'key', 'prefix'] as const) {
    if (v[f] !== undefined && !store)
      throw new CliError(EXIT.usage, `--${f} only applies with --store`, { field: `--${f}` });
  }
  // With --url these belong to the app's engine and its token table; silently ignoring them would mislead.
  const storeOnly: Record<string, string> = {
    'drain-deadline': "the app's engine has its own drainDeadlineMs",
    soak: "the app's engine has its own soakMs",
    actor: 'the admin token names the actor in the audit log',
  };
  for (const [f, why] of Object.entries(storeOnly)) {
    if (v[f] !== undefined && !store)
      throw new CliError(EXIT.usage, `--${f} only applies with --store (${why})`, { field: `--${f}` });
  }
  if (url) {
    parseBaseUrl(url);
    const token = str(v, 'token') ?? (env.QUIESCE_TOKEN || undefined);
    return createHttpController({ url, ...(token ? { token } : {}) });
  }
  const { kind } = parseStoreUrl(store!);
  if (v.schema !== undefined && kind !== 'postgres')
    throw new CliError(EXIT.usage, '--schema only applies to a postgres:// store', { field: '--schema' });
  if (v.key !== undefined && kind !== 'postgres')
    throw new CliError(EXIT.usage, '--key only applies to a postgres:// store', { field: '--key' });
  if (v.prefix !== undefined && kind !== 'redis')
    throw new CliError(EXIT.usage, '--prefix only applies to a redis:// store', { field: '--prefix' });
  const drain = str(v, 'drain-deadline');
  const soak = str(v, 'soak');
  return createStoreController({
    store: store!,
    ...(str(v, 'schema') ? { schema: str(v, 'schema')! } : {}),
    ...(str(v, 'key') ? { key: str(v, 'key')! } : {}),
    ...(str(v, 'prefix') ? { prefix: str(v, 'prefix')! } : {}),
    ...(drain ? { drainDeadlineMs: parseDuration(drain, '--drain-deadline') } : {}),
    ...(soak ? { soakMs: parseDuration(soak, '--soak') } : {}),
  });
}

const defaultActor = () => {
  try {
    return `${userInfo().username}@${hostname()} (cli)`;
  } catch {
    return `${hostname()} (cli)`;
  }
};

class Output {
  #live = false;
  constructor(
    readonly io: CliIo,
    readonly json: boolean,
  ) {}
  line(text = '') {
    this.#endLive();
    if (!this.json) this.io.stdout.write(`${text}\n`);
  }
  lines(texts: string[]) {
    for (const t of texts) this.line(t);
  }
  data(value: unknown) {
    this.#endLive();
    this.io.stdout.write(`${JSON.stringify(value, null, this.json ? 2 : 0)}\n`);
  }
  /** A progress line: rewritten in place on a terminal, one line per change otherwise; never in --json. */
  progress(text: string) {
    if (this.json) return;
    if (this.io.stdout.isTTY) {
      this.io.stdout.write(`\r\x1b[K${text}`);
      this.#live = true;
    } else this.io.stdout.write(`${text}\n`);
  }
  warn(text: string) {
    this.#endLive();
    this.io.stderr.write(`${text}\n`);
  }
  #endLive() {
    if (this.#live) this.io.stdout.write('\n');
    this.#live = false;
  }
}

/**
 * Poll the status until `done` holds, printing a progress line whenever it changes. Resolves with
 * the last status; throws exit 8 after `timeoutMs`.
 */
async function follow(
  c: Controller,
  out: Output,
  done: (s: EngineStatus) => boolean,
  timeoutMs: number,
  what: string,
): Promise<EngineStatus> {
  const started = Date.now();
  let last = '';
  let polls = 0;
  for (;;) {
    const s = await c.status();
    if (done(s)) return s;
    const line = progressLine(s, started, Date.now(), c.kind);
    // Re-print on a change of substance, not every second of elapsed time (unless on a terminal).
    const key = line.replace(/\d+(ms|s|m|h|d)\b( \d+(s|m|h))?/g, '#');
    if (key !== last || out.io.stdout.isTTY) out.progress(line);
    last = key;
    if (out.io.signal?.aborted) {
      throw new CliError(
        EXIT.failure,
        `interrupted while waiting for ${what} (now ${s.phase ?? 'no window'})` +
          (c.kind === 'store' && what === 'frozen'
            ? '; this process was confirming the freeze: writes stay refused, but the window stays freezing until it is ended'
            : c.kind === 'store'
              ? '; writes are on, but this process was running the soak and backfill, so the window record stays unfinished'
              : '; the window goes on — check `quiesce status`'),
      );
    }
    if (Date.now() - started > timeoutMs) {
      throw new CliError(
        EXIT.timeout,
        `timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what} (now ${s.phase ?? 'no window'}); the window goes on — check \`quiesce status\``,
      );
    }
    // Quick first looks (a freeze usually confirms within milliseconds), then a steady pace.
    await sleep(Math.min(c.kind === 'store' ? 100 : 250, 10 * 2 ** polls++), out.io.signal);
  }
}

async function begin(c: Controller, v: Values, out: Output): Promise<ExitCode> {
  const reason = str(v, 'reason');
  const message = str(v, 'message');
  if (!reason)
    throw new CliError(EXIT.usage, 'begin: --reason is required (why, for the audit trail)', {
      field: '--reason',
    });
  if (!message)
    throw new CliError(EXIT.usage, 'begin: --message is required (what users are told)', {
      field: '--message',
    });
  const given = ['for', 'until', 'open-ended'].filter((f) => v[f] !== undefined);
  if (given.length === 0) {
    throw new CliError(
      EXIT.usage,
      'begin: give --for 30m, --until <time> or --open-ended (users are told when writes return)',
      {
        field: '--for',
      },
    );
  }
  if (given.length > 1) {
    throw new CliError(EXIT.usage, `begin: give only one of --${given.join(', --')}`, {
      field: `--${given[1]}`,
    });
  }
  const at = str(v, 'at');
  const startsAt = at ? parseTime(at, '--at') : undefined;
  const forMs = str(v, 'for') ? parseDuration(str(v, 'for')!, '--for') : undefined;
  const until = str(v, 'until') ? parseTime(str(v, 'until')!, '--until') : undefined;
  if (until && startsAt && Date.parse(until) <= Date.parse(startsAt)) {
    throw new CliError(EXIT.usage, `--until: ${until} must be after --at ${startsAt}`, { field: '--until' });
  }
  if (v['auto-end'] && v['open-ended']) {
    throw new CliError(EXIT.usage, '--auto-end needs an end: give --for or --until instead of --open-ended', {
      field: '--auto-end',
    });
  }
  const timeoutMs = parseDuration(str(v, 'timeout') ?? '2m', '--timeout');
  if (v['no-wait'] && c.kind === 'store' && !startsAt) {
    throw new CliError(
      EXIT.usage,
      '--no-wait: with --store this process confirms the freeze (it counts the instances in the registry), so it must wait; use --url to hand that to the app',
      { field: '--no-wait' },
    );
  }
  const endsAt =
    until ??
    (forMs ? new Date((startsAt ? Date.parse(startsAt) : Date.now()) + forMs).toISOString() : undefined);
  const req: BeginRequest = {
    reason,
    message,
    ...(endsAt ? { endsAt } : {}),
    ...(startsAt ? { startsAt } : {}),
    ...(str(v, 'contact') ? { contact: str(v, 'contact')! } : {}),
    ...(str(v, 'rollback-plan') ? { rollbackPlan: str(v, 'rollback-plan')! } : {}),
    ...(v['auto-end'] ? { autoEnd: true } : {}),
    actor: str(v, 'actor') ?? defaultActor(),
  };
  const w = await c.begin(req);
  if (w.phase === 'scheduled') {
    out.line(`window ${w.id} scheduled: writes stop at ${w.startsAt}${w.endsAt ? ` until ${w.endsAt}` : ''}`);
    out.lines(windowLines(w));
    if (out.json) out.data({ window: w });
    return EXIT.ok;
  }
  out.line(`window ${w.id} began: writes are refused from now on${w.endsAt ? ` until ${w.endsAt}` : ''}`);
  if (v['no-wait']) {
    if (out.json) out.data({ window: w });
    return EXIT.ok;
  }
  const s = await follow(
    c,
    out,
    (s) => s.state.window?.id !== w.id || reached(s.phase, 'frozen'),
    timeoutMs,
    'frozen',
  );
  const fw = s.state.window;
  if (!fw || fw.id !== w.id) throw new CliError(EXIT.conflict, `window ${w.id} was replaced before it froze`);
  if (fw.phase !== 'frozen') out.line(`window ${w.id} is already ${fw.phase}`);
  else out.lines(frozenSummary(fw, s));
  if (out.json) out.data({ window: fw, instances: s.instances });
  return fw.stragglers.length > 0 ? EXIT.stragglers : EXIT.ok;
}

async function extend(c: Controller, v: Values, out: Output): Promise<ExitCode> {
  const by = str(v, 'by');
  const until = str(v, 'until');
  const message = str(v, 'message');
  if (by && until)
    throw new CliError(EXIT.usage, 'extend: give --by or --until, not both', { field: '--until' });
  if (!by && !until && !message) {
    throw new CliError(EXIT.usage, 'extend: give --by 15m, --until <time> or --message …', { field: '--by' });
  }
  const w = await c.extend({
    ...(by ? { byMs: parseDuration(by, '--by') } : {}),
    ...(until ? { endsAt: parseTime(until, '--until') } : {}),
    ...(message ? { message } : {}),
    actor: str(v, 'actor') ?? defaultActor(),
  });
  out.line(`window ${w.id} now ends ${w.endsAt ?? 'at an unknown time'}`);
  out.lines(windowLines(w));
  if (out.json) out.data({ window: w });
  return EXIT.ok;
}

async function end(c: Controller, v: Values, out: Output): Promise<ExitCode> {
  const timeoutMs = parseDuration(str(v, 'timeout') ?? '10m', '--timeout');
  if (v['no-wait'] && c.kind === 'store') {
    throw new CliError(
      EXIT.usage,
      '--no-wait: with --store this process runs the soak and closes the window, so it must wait; use --url to hand that to the app',
      { field: '--no-wait' },
    );
  }
  const w = await c.end({
    ...(str(v, 'reason') ? { reason: str(v, 'reason')! } : {}),
    ...(str(v, 'message') ? { message: str(v, 'message')! } : {}),
    actor: str(v, 'actor') ?? defaultActor(),
    ...(v.force ? { force: true } : {}),
  });
  // fencing (#12): a forced end closes the window at once, whatever phase it was in.
  if (v.force && w.checklist?.forced) {
    out.line(`window ${w.id} closed by force (it was ${w.checklist.forced.fromPhase})`);
    if (out.json) out.data({ window: w });
    return EXIT.ok;
  }
  if (w.phase === 'closed') {
    out.line(`window ${w.id} was only scheduled: cancelled`);
    if (out.json) out.data({ window: w });
    return EXIT.ok;
  }
  out.line(`window ${w.id} ended: writes are back on`);
  if (v['no-wait']) {
    if (out.json) out.data({ window: w });
    return EXIT.ok;
  }
  const s = await follow(
    c,
    out,
    (s) => s.state.window?.id !== w.id || s.phase === 'closed',
    timeoutMs,
    'closed',
  );
  const fw = s.state.window;
  if (fw?.id === w.id) out.lines(closedSummary(fw));
  if (c.kind === 'store' && fw?.id === w.id) {
    out.line(
      '(with --store the app instances replayed the queued intents: they hold the queue and the handlers)',
    );
  }
  if (out.json) out.data({ window: fw, backfill: s.backfill });
  return EXIT.ok;
}

async function status(c: Controller, v: Values, out: Output): Promise<ExitCode> {
  const intervalMs = parseDuration(str(v, 'interval') ?? '1s', '--interval');
  const print = (s: EngineStatus) => {
    if (out.json) out.io.stdout.write(`${JSON.stringify(s)}\n`);
    else out.lines(statusLines(s, c.target, c.kind));
  };
  if (!v.watch) {
    const s = await c.status();
    if (out.json) out.data(s);
    else print(s);
    return EXIT.ok;
  }
  let last = '';
  let first = true;
  while (!out.io.signal?.aborted) {
    const s = await c.status();
    const key = statusKey(s);
    if (key !== last) {
      // On a terminal, redraw in place; in a pipe or a log, append with a separator.
      if (out.io.stdout.isTTY && !out.json) out.io.stdout.write('\x1b[2J\x1b[H');
      else if (!first && !out.json) out.line(`--- ${new Date().toISOString()}`);
      print(s);
      if (out.io.stdout.isTTY && !out.json)
        out.line(`\n(watching every ${formatDuration(intervalMs)}; Ctrl-C to stop)`);
      first = false;
      last = key;
    }
    await sleep(intervalMs, out.io.signal);
  }
  return EXIT.ok;
}

async function inventory(c: Controller, v: Values, out: Output): Promise<ExitCode> {
  const { entries, unclassified } = await c.inventory();
  if (out.json) out.data({ entries, unclassified });
  else out.lines(inventoryLines(entries, unclassified));
  return v['fail-on-unclassified'] && unclassified.length > 0 ? EXIT.unclassified : EXIT.ok;
}

const INTENT_STATUSES = ['queued', 'replaying', 'applied', 'failed'];

function limitFlag(v: Values): number | undefined {
  const raw = str(v, 'limit');
  if (raw === undefined) return undefined;
  const limit = Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new CliError(EXIT.usage, `--limit: must be an integer from 1 to 1000, got "${raw}"`, {
      field: '--limit',
    });
  }
  return limit;
}

async function intents(c: Controller, positionals: string[], v: Values, out: Output): Promise<ExitCode> {
  const id = positionals[0];
  if (id) {
    const i = await c.intent(id);
    if (out.json) out.data(i);
    else out.lines(intentLines(i));
    return EXIT.ok;
  }
  const status = str(v, 'status');
  if (status !== undefined && !INTENT_STATUSES.includes(status)) {
    throw new CliError(
      EXIT.usage,
      `--status: must be one of ${INTENT_STATUSES.join(', ')}, got "${status}"`,
      {
        field: '--status',
      },
    );
  }
  const limit = limitFlag(v);
  const list = await c.intents({ ...(status ? { status } : {}), ...(limit ? { limit } : {}) });
  const s = await c.status();
  if (out.json) {
    out.data({
      queue: s.queue,
      backfill: s.backfill,
      phase: s.phase,
      windowId: s.state.window?.id ?? null,
      intents: list,
    });
    return EXIT.ok;
  }
  if (!s.queue) out.line('the app has no intent queue it can report on');
  else {
    out.line(
      `queued ${s.queue.depth}${s.queue.oldestAgeMs != null ? ` (oldest ${Math.round(s.queue.oldestAgeMs / 1000)}s)` : ''} · replaying ${s.queue.replaying} · applied ${s.queue.applied} · failed ${s.queue.failed}`,
    );
  }
  if (s.backfill)
    out.line(
      `last backfill: ${s.backfill.done}/${s.backfill.total} (${s.backfill.applied} applied, ${s.backfill.failed} failed)`,
    );
  if (list.length === 0) out.line(status ? `no ${status} intents` : 'no intents');
  for (const i of list) {
    out.line(
      `${i.id}  ${i.status.padEnd(9)}  ${i.name}  key ${i.idempotencyKey}  ${i.createdAt}  attempts ${i.attempts}`,
    );
  }
  return EXIT.ok;
}

async function audit(c: Controller, v: Values, out: Output): Promise<ExitCode> {
  const limit = limitFlag(v);
  const entries = await c.audit({
    ...(limit ? { limit } : {}),
    ...(str(v, 'window') ? { windowId: str(v, 'window')! } : {}),
  });
  if (out.json) out.data({ entries });
  else out.lines(auditLines(entries));
  return EXIT.ok;
}

/** Run the CLI; resolves with the exit code. Never throws for bad input: it reports and returns 2. */
export async function runCli(argv: string[], io: CliIo): Promise<ExitCode> {
  const [command, ...rest] = argv;
  const wantsJson = rest.includes('--json');
  const fail = (err: CliError): ExitCode => {
    if (wantsJson) {
      io.stdout.write(
        `${JSON.stringify({ error: { message: err.message, exitCode: err.exitCode, ...(err.field ? { field: err.field } : {}) } })}\n`,
      );
    }
    io.stderr.write(`quiesce: ${err.message}\n`);
    return err.exitCode;
  };
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    io.stdout.write(`${USAGE}\n`);
    return command ? EXIT.ok : EXIT.usage;
  }
  if (command === '--version' || command === '-v') {
    io.stdout.write(`${typeof __VERSION__ === 'string' ? __VERSION__ : 'dev'}\n`);
    return EXIT.ok;
  }
  if (!Object.hasOwn(COMMANDS, command)) {
    return fail(
      new CliError(
        EXIT.usage,
        `unknown command "${command}"; commands: ${Object.keys(COMMANDS).join(', ')} (quiesce --help)`,
      ),
    );
  }
  let controller: Controller | null = null;
  try {
    const { values, positionals } = parse(command, rest);
    if (values.help) {
      io.stdout.write(`usage: quiesce ${COMMANDS[command]!.summary}\n\n${USAGE}\n`);
      return EXIT.ok;
    }
    const out = new Output(io, values.json === true);
    controller = await openController(values, io.env, command);
    switch (command) {
      case 'begin':
        return await begin(controller, values, out);
      case 'extend':
        return await extend(controller, values, out);
      case 'end':
        return await end(controller, values, out);
      case 'status':
        return await status(controller, values, out);
      case 'inventory':
        return await inventory(controller, values, out);
      case 'intents':
        return await intents(controller, positionals, values, out);
      default:
        return await audit(controller, values, out);
    }
  } catch (err) {
    if (err instanceof CliError) return fail(err);
    return fail(new CliError(EXIT.failure, `unexpected error: ${(err as Error)?.stack ?? String(err)}`));
  } finally {
    await controller?.close().catch(() => {});
  }
}

declare const __VERSION__: string;
