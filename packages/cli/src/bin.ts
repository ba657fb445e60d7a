#!/usr/bin/env node
import { runCli } from './cli.js';

// `quiesce status | head -3`: the reader went away; that is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const ctrl = new AbortController();
let interrupted = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    // First signal: stop watching and close connections cleanly; a second one exits at once.
    if (++interrupted > 1) process.exit(130);
    ctrl.abort();
  });
}

runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: ctrl.signal,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`quiesce: ${err?.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
