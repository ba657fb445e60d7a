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
export async function cli(
  args: string[],
  env: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env,
    ...(signal ? { signal } : {}),
  };
  const code = await runCli(args, io);
  let json: any = null;
  try {
    json = JSON.parse(stdout);
  } catch {}
  return { code, stdout, stderr, json };
}

export function listen(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    ),
  );
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
