import { type ChildProcess, spawn } from 'node:child_process';

/**
 * A refresher pass in a process of its own (`script`, run with tsx): it prints "ready" once open,
 * waits for "go" on stdin, runs one pass and prints its report as the last JSON line. Used by the
 * multi-worker test and the sweep and scale-out benchmarks.
 */
export function startPassWorker<Report>(script: string, env: NodeJS.ProcessEnv) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let markReady: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout!.on('data', (chunk) => {
    stdout += chunk;
    if (stdout.includes('ready\n')) markReady();
  });
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const report = new Promise<Report>((resolve, reject) => {
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(stdout.trim().split('\n').at(-1)!))
        : reject(new Error(`${script} exited ${code}: ${stderr}`)),
    );
  });
  return { child, ready, report };
}
