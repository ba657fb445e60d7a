import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CliIo, runCli } from '../src/index.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (for --json runs). */
  json: any;
}

/** Run the CLI in-process with captured output and only the environment given. */
export function cli(args: string[], env: Record<string, string> = {}, signal?: AbortSignal): Promise<CliRun> {
  return startCli(args, env, signal).result;
}

export interface CliStarted {
  /** The run's outcome, once the CLI returns. */
  result: Promise<CliRun>;
  /**
   * Resolves with stdout so far as soon as it matches `pattern` (checked on every write: an explicit
   * signal, no polling); rejects if the CLI returns without having printed it.
   */
  printed(pattern: RegExp): Promise<string>;
}

/** Start the CLI in-process, to act on what it prints while it runs. */
export function startCli(args: string[], env: Record<string, string> = {}, signal?: AbortSignal): CliStarted {
  let stdout = '';
  let stderr = '';
  const watchers = new Set<{ pattern: RegExp; resolve: (out: string) => void }>();
  const io: CliIo = {
    stdout: {
      write: (s: string) => {
        stdout += s;
        for (const w of watchers) {
          if (w.pattern.test(stdout)) {
            watchers.delete(w);
            w.resolve(stdout);
          }
        }
        return true;
      },
    },
    stderr: { write: (s: string) => (stderr += s) },
    env,
    ...(signal ? { signal } : {}),
  };
  const result = runCli(args, io).then((code) => {
    let json: any = null;
    try {
      json = JSON.parse(stdout);
    } catch {}
    return { code, stdout, stderr, json };
  });
  return {
    result,
    printed: (pattern) =>
      new Promise<string>((resolve, reject) => {
        if (pattern.test(stdout)) return resolve(stdout);
        watchers.add({ pattern, resolve });
        const fail = (detail: string) =>
          reject(
            new Error(`the CLI ${detail} without printing ${pattern}\nstdout: ${stdout}\nstderr: ${stderr}`),
          );
        result.then(
          (r) => fail(`returned ${r.code}`),
          (e: unknown) => fail(`threw ${String(e)}`),
        );
      }),
  };
}

export function listen(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    ),
  );
}
