import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HOOK = fileURLToPath(new URL('./listenHook.cjs', import.meta.url));

export type Started =
  | { kind: 'exited'; code: number | null; signal: NodeJS.Signals | null; output: () => string }
  | {
      kind: 'serving';
      url: string;
      output: () => string;
      stop: () => Promise<void>;
      /** Resolves when the program exits by itself (or is stopped). */
      exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    };

/**
 * Runs a compiled example with Node. Resolves when it either exits (a program that finishes) or
 * reports a listening server through the preloaded hook (a program that serves; `stop()` ends it —
 * the only process this kills is the one it started). Rejects when neither happens in `timeoutMs`.
 */
export function runExample(
  file: string,
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<Started> {
  const child: ChildProcess = spawn(process.execPath, ['--require', HOOK, file], {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  child.stdout!.on('data', (d) => {
    output += d;
  });
  child.stderr!.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  };
  return new Promise<Started>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void stop().then(() =>
        reject(
          new Error(
            `the example neither exited nor listened within ${options.timeoutMs / 1000} s; output:\n${output}`,
          ),
        ),
      );
    }, options.timeoutMs);
    child.on('message', (message: { docsTestListening?: number }) => {
      if (typeof message?.docsTestListening !== 'number') return;
      clearTimeout(timer);
      resolve({
        kind: 'serving',
        url: `http://127.0.0.1:${message.docsTestListening}`,
        output: () => output,
        stop,
        exited,
      });
    });
    child.once('exit', (code, signal) => {
      if (timedOut) return;
      clearTimeout(timer);
      resolve({ kind: 'exited', code, signal, output: () => output });
    });
  });
}
