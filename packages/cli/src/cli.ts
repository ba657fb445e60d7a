import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import {
  buildClosingRecord,
  type ClosingRecord,
  type EngineStatus,
  type EscalationRows,
  escalationRows,
} from '@quiesce/core';
import { CliError, EXIT, type ExitCode } from './cliError.js';
import type { BeginRequest, Controller } from './controller.js';
import { formatDuration, parseDuration, parseTime } from './duration.js';
import { createHttpController, parseBaseUrl } from './httpController.js';
import {
  auditLines,
  closedSummary,
  closingRecordLines,
  escalationLines,
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

/** One option as `--help` documents it: what it is, its value, its default. */
interface OptionDoc {
  type: 'string' | 'boolean';
  short?: string;
  /** Placeholder of the value (`<duration>`). */
  value?: string;
  desc: string;
  default?: string;
}

const TARGET_OPTIONS: Record<string, OptionDoc> = {
  url: {
    type: 'string',
    value: '<url>',
    desc: "the app's quiesce router, e.g. http://127.0.0.1:3000/quiesce",
    default: 'env QUIESCE_URL',
  },
  token: {
    type: 'string',
    value: '<token>',
    desc: 'admin token of the router',
    default: 'env QUIESCE_TOKEN',
  },
  store: {
    type: 'string',
    value: '<store url>',
    desc: 'the state store itself: postgres://…, redis://… or file:./state.json',
    default: 'env QUIESCE_STORE',
  },
  create: {
    type: 'boolean',
    desc: 'with --store: start a new store if the file, schema or key does not exist yet (else exit 9)',
    default: 'off',
  },
  schema: { type: 'string', value: '<name>', desc: 'PostgreSQL schema of the store', default: 'quiesce' },
  key: { type: 'string', value: '<key>', desc: 'row key of the PostgreSQL store', default: 'default' },
  prefix: { type: 'string', value: '<prefix>', desc: 'key prefix of the Redis store', default: 'quiesce:' },
  json: { type: 'boolean', desc: 'machine-readable output on stdout', default: 'off' },
  help: { type: 'boolean', short: 'h', desc: 'this help' },
};

interface CommandDoc {
  summary: string;
  /** One sentence: what the command does. */
  about: string;
  positionals: number;
  options: Record<string, OptionDoc>;
  examples: string[];
}

const COMMANDS: Record<string, CommandDoc> = {
  begin: {
    summary:
      'begin --reason … --message … (--for 30m | --until <time> | --open-ended) [--at <time>] [--contact …] [--rollback-plan …] [--auto-end] [--no-wait] [--timeout 2m] [--drain-deadline 30s]',
    about:
      'Open a window: writes are refused from now (or from --at), then wait until every live instance confirmed the freeze.',
    positionals: 0,
    options: {
      reason: { type: 'string', value: '<text>', desc: 'why, for the audit trail (required)' },
      message: { type: 'string', value: '<text>', desc: 'what users are told (required)' },
      for: {
        type: 'string',
        value: '<duration>',
        desc: 'expected length, e.g. 30m (one of --for, --until, --open-ended)',
      },
      until: {
        type: 'string',
        value: '<time>',
        desc: 'expected end, RFC 3339 with an offset, e.g. 2035-01-01T09:30:00Z',
      },
      'open-ended': { type: 'boolean', desc: 'no expected end (clients get a default Retry-After)' },
      at: {
        type: 'string',
        value: '<time>',
        desc: 'schedule the window to start later instead of now',
        default: 'now',
      },
      contact: { type: 'string', value: '<text>', desc: 'who to contact during the window' },
      'rollback-plan': { type: 'string', value: '<text>', desc: 'what happens if it goes wrong' },
      'auto-end': { type: 'boolean', desc: 'end the window by itself at its expected end', default: 'off' },
      actor: {
        type: 'string',
        value: '<name>',
        desc: 'with --store: who is recorded in the audit log',
        default: 'user@host (cli)',
      },
      'no-wait': {
        type: 'boolean',
        desc: 'with --url: return once the window began, without waiting for the freeze',
        default: 'off',
      },
      timeout: {
        type: 'string',
        value: '<duration>',
        desc: 'give up waiting for the freeze after this long (exit 8)',
        default: '2m',
      },
      'drain-deadline': {
        type: 'string',
        value: '<duration>',
        desc: 'with --store: wait this long for in-flight writes',
        default: '30s',
      },
    },
    examples: [
      'quiesce begin --url http://127.0.0.1:3000/quiesce --token $TOKEN --reason "orders migration" --message "Orders are read-only for 30 minutes." --for 30m',
      'quiesce begin --store postgres://db/app --reason "index rebuild" --message "Back by 14:30 UTC." --until 2035-01-01T14:30:00Z',
    ],
  },
  extend: {
    summary: 'extend (--by 15m | --until <time>) [--message …]',
    about: 'Move the expected end of the open window, or change its message.',
    positionals: 0,
    options: {
      by: { type: 'string', value: '<duration>', desc: 'push the end later by this long, e.g. 15m' },
      until: { type: 'string', value: '<time>', desc: 'new expected end, RFC 3339 with an offset' },
      message: { type: 'string', value: '<text>', desc: 'new message for users' },
      actor: {
        type: 'string',
        value: '<name>',
        desc: 'with --store: who is recorded in the audit log',
        default: 'user@host (cli)',
      },
    },
    examples: ['quiesce extend --by 15m --message "Taking longer than planned: back by 15:00 UTC."'],
  },
  end: {
    summary: 'end [--reason …] [--message …] [--no-wait] [--timeout 10m] [--soak 10s] [--force]',
    about: 'End the window: writes are back on; then wait for the soak, the closure notice and the backfill.',
    positionals: 0,
    options: {
      reason: { type: 'string', value: '<text>', desc: 'why, for the audit trail' },
      message: { type: 'string', value: '<text>', desc: 'closing message for users' },
      actor: {
        type: 'string',
        value: '<name>',
        desc: 'with --store: who is recorded in the audit log',
        default: 'user@host (cli)',
      },
      // fencing (#12): close a window stuck in any phase, audited
      force: {
        type: 'boolean',
        desc: 'close the window in any phase at once (a stuck thaw or backfill), audited',
        default: 'off',
      },
      'no-wait': { type: 'boolean', desc: 'with --url: return once writes are back on', default: 'off' },
      timeout: {
        type: 'string',
        value: '<duration>',
        desc: 'give up waiting for the close after this long (exit 8)',
        default: '10m',
      },
      soak: {
        type: 'string',
        value: '<duration>',
        desc: 'with --store: watch reads this long before the closure notice',
        default: '10s',
      },
    },
    examples: ['quiesce end --reason "migration done"'],
  },
  status: {
    summary: 'status [--watch] [--interval 1s] [--json]',
    about: 'Show the state, the phase, the instances and read health.',
    positionals: 0,
    options: {
      watch: { type: 'boolean', short: 'w', desc: 'keep watching, printing each change', default: 'off' },
      interval: { type: 'string', value: '<duration>', desc: 'how often --watch looks', default: '1s' },
    },
    examples: ['quiesce status --watch', 'quiesce status --store file:./state.json --json'],
  },
  inventory: {
    summary: 'inventory [--fail-on-unclassified] [--json]',
    about: "List the app's write surfaces and the policy decided for each (needs --url).",
    positionals: 0,
    options: {
      'fail-on-unclassified': {
        type: 'boolean',
        desc: 'exit 6 when a write surface has no decided policy (for CI)',
        default: 'off',
      },
    },
    examples: ['quiesce inventory --fail-on-unclassified'],
  },
  intents: {
    summary: 'intents [<intent id>] [--status queued|replaying|applied|failed] [--limit 100] [--json]',
    about: 'List the queued write intents, or show one by id (needs --url).',
    positionals: 1,
    options: {
      status: {
        type: 'string',
        value: '<status>',
        desc: 'only intents in this status: queued, replaying, applied or failed',
      },
      limit: { type: 'string', value: '<n>', desc: 'at most this many (1-1000)', default: '100' },
    },
    examples: ['quiesce intents --status failed', 'quiesce intents int_0b6c…'],
  },
  audit: {
    summary: 'audit [--limit 50] [--window <id>] [--json]',
    about: 'Show the audit log: who changed what, when and why (needs --url).',
    positionals: 0,
    options: {
      limit: { type: 'string', value: '<n>', desc: 'at most this many entries (1-1000)', default: '50' },
      window: { type: 'string', value: '<id>', desc: 'only entries of this window' },
    },
    examples: ['quiesce audit --limit 20'],
  },
};

const specOf = (options: Record<string, OptionDoc>): Spec =>
  Object.fromEntries(
    Object.entries(options).map(([k, o]) => [k, { type: o.type, ...(o.short ? { short: o.short } : {}) }]),
  );
const TARGET: Spec = specOf(TARGET_OPTIONS);

function optionRows(options: Record<string, OptionDoc>): string[] {
  const rows = Object.entries(options).map(([name, o]) => [
    `  ${o.short ? `-${o.short}, ` : ''}--${name}${o.value ? ` ${o.value}` : ''}`,
    `${o.desc}${o.default ? ` (default: ${o.default})` : ''}`,
  ]);
  const width = Math.max(...rows.map((r) => r[0]!.length)) + 2;
  return rows.map(([a, b]) => `${a!.padEnd(width)}${b}`);
}

/** `quiesce <command> --help`: every option with its default, and examples. */
export function commandHelp(command: string): string {
  const c = COMMANDS[command]!;
  return [
    `usage: quiesce ${c.summary}`,
    '',
    c.about,
    '',
    'Options:',
    ...optionRows(c.options),
    '',
    'Target (one of --url or --store):',
    ...optionRows(TARGET_OPTIONS),
    '',
    'Examples:',
    ...c.examples.map((e) => `  ${e}`),
    '',
    'Durations: 90s, 30m, 1h30m, 2h, 1d (positive, at most 7d). Times: RFC 3339 with an offset, e.g. 2035-01-01T09:30:00Z.',
    'Exit codes: quiesce --help.',
  ].join('\n');
}

export const USAGE = `quiesce — read-only mode and maintenance windows

Usage: quiesce <command> [options]      quiesce <command> --help for every option of a command

Commands:
${Object.values(COMMANDS)
  .map((c) => `  quiesce ${c.summary}`)
  .join('\n')}

Target (one of):
  --url <http://host/quiesce> --token <admin token>   the app's admin API (env QUIESCE_URL, QUIESCE_TOKEN)
  --store <postgres://…|redis://…|file:./state.json>   the state store itself (env QUIESCE_STORE)
      [--schema quiesce] [--key default] (postgres)  [--prefix quiesce:] (redis)  [--create] (a new store)

Durations: 90s, 30m, 1h30m, 2h, 1d.  Times: RFC 3339 with an offset, e.g. 2035-01-01T09:30:00Z.
--json prints machine-readable output on stdout.

Exit codes: 0 ok · 1 unexpected failure · 2 bad usage or input · 3 app or store unreachable ·
4 token missing or refused · 5 conflicts with the current state (no window, one already open, not found) ·
6 unclassified write surfaces (inventory --fail-on-unclassified) · 7 frozen with stragglers named ·
8 timed out waiting · 9 the --store does not exist (no such file, schema or key; --create to start one) ·
10 began, but no live app instance is registered in the store (nothing confirmed the freeze)`;

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

const DURATION_FLAGS = new Set(['--for', '--by', '--timeout', '--drain-deadline', '--soak', '--interval']);

/** A friendly error for `--for -5m` (a value starting with a dash) or a flag given no value. */
function valueError(command: string, argv: string[], flag: string, missingValue: boolean): CliError {
  const opt = COMMANDS[command]!.options[flag.slice(2)] ?? TARGET_OPTIONS[flag.slice(2)];
  const example = DURATION_FLAGS.has(flag) ? '30m' : opt?.value ? opt.value : 'a value';
  if (missingValue) {
    return new CliError(
      EXIT.usage,
      `${flag}: needs a value, e.g. ${flag} ${example} (quiesce ${command} --help)`,
      {
        field: flag,
      },
    );
  }
  const given = argv[argv.indexOf(flag) + 1] ?? '';
  if (DURATION_FLAGS.has(flag) && /^-\d/.test(given)) {
    return new CliError(
      EXIT.usage,
      `${flag}: durations cannot be negative, got "${given}"; give a positive duration such as ${given.slice(1)}`,
      { field: flag },
    );
  }
  return new CliError(
    EXIT.usage,
    `${flag}: the value "${given}" starts with a dash, so it reads as an option; if it is the value, write ${flag}=${given}`,
    { field: flag },
  );
}

function parse(command: string, argv: string[]) {
  const def = COMMANDS[command]!;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...TARGET, ...specOf(def.options) },
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
    const valueFlag = /^Option '(--[\w-]+)(?: <value>)?' argument (is ambiguous|missing)/.exec(e.message);
    if (valueFlag) throw valueError(command, argv, valueFlag[1]!, valueFlag[2] === 'missing');
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
  for (const f of ['schema', 'key', 'prefix', 'create'] as const) {
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
    ...(v.create ? { create: true } : {}),
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
    const line = progressLine(s, started, Date.now(), c.kind, {
      tty: out.io.stdout.isTTY === true,
      ...(c.soakMs !== undefined ? { soakMs: c.soakMs } : {}),
    });
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
  const live = s.instances.filter((i) => i.live).length;
  if (out.json)
    out.data({ window: fw, instances: s.instances, ...(live === 0 ? { warning: 'no-live-instances' } : {}) });
  if (fw.stragglers.length > 0) return EXIT.stragglers;
  if (live === 0) {
    out.warn(
      `quiesce: warning: no live app instance is registered in the ${c.target}: nothing confirmed the freeze. ` +
        'If apps are running, they use another store, schema, key or prefix (exit 10).',
    );
    return EXIT.noInstances;
  }
  return EXIT.ok;
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
  const failed = v['fail-on-unclassified'] === true && unclassified.length > 0;
  if (out.json) out.data({ entries, unclassified, ...(v['fail-on-unclassified'] ? { failed } : {}) });
  else out.lines(inventoryLines(entries, unclassified));
  if (!failed) return EXIT.ok;
  out.warn(
    [
      `quiesce: inventory failed (--fail-on-unclassified): ${unclassified.length} write surface${unclassified.length === 1 ? ' has' : 's have'} no decided policy:`,
      ...unclassified.map(
        (e) => `  - ${e.surface} ${e.name} (${e.source}; blocked by default during a window)`,
      ),
      'Decide each with a route helper (allow(), queue(), drop(), writes()) or a rule, then run this again.',
    ].join('\n'),
  );
  return EXIT.unclassified;
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
  const windowId = str(v, 'window');
  // record (#13): with --window, that window's closing record as recorded, when the state still holds
  // it. On a store the record is there (it is in the state); the audit log lives in the app.
  const onStore = c.kind === 'store' && windowId !== undefined;
  const entries = onStore
    ? []
    : await c.audit({
        ...(limit ? { limit } : {}),
        ...(windowId ? { windowId } : {}),
      });
  let record: ClosingRecord | null = null;
  let escalation: EscalationRows | null = null;
  if (windowId) {
    const w = (await c.status()).state.window;
    if (w?.id === windowId) {
      record = buildClosingRecord(w, onStore ? [] : await c.audit({ windowId }));
      escalation = escalationRows(w); // #18: every escalation, with its figures
    }
  }
  if (out.json) out.data(windowId ? { entries, record, escalation } : { entries });
  else {
    if (windowId) {
      out.lines(
        record
          ? [...closingRecordLines(record), ...escalationLines(escalation)]
          : [`the closing record of ${windowId} is no longer in the state (it holds the latest window only)`],
      );
      out.line('');
    }
    out.lines(onStore ? ['(the audit log lives in the app: --url for its entries)'] : auditLines(entries));
  }
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
  if (command === 'help' && rest[0] && Object.hasOwn(COMMANDS, rest[0])) {
    io.stdout.write(`${commandHelp(rest[0])}\n`);
    return EXIT.ok;
  }
  if (
    command !== undefined &&
    Object.hasOwn(COMMANDS, command) &&
    (rest.includes('--help') || rest.includes('-h'))
  ) {
    io.stdout.write(`${commandHelp(command)}\n`);
    return EXIT.ok;
  }
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
      io.stdout.write(`${commandHelp(command)}\n`);
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
