import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A script to run in a child process, and the Node.js arguments that load it. */
export interface ChildScript {
  path: string;
  nodeArgs: string[];
}

/**
 * The script `relativeName` (no extension) beside the module at `moduleUrl`, in the same form as
 * that module: TypeScript run with tsx under the tests, compiled JavaScript under `npm run bench`.
 */
export function scriptBeside(moduleUrl: string, relativeName: string): ChildScript {
  const compiled = !moduleUrl.endsWith('.ts');
  const path = fileURLToPath(new URL(`${relativeName}${compiled ? '.js' : '.ts'}`, moduleUrl));
  return { path, nodeArgs: compiled ? [] : ['--import', 'tsx'] };
}

/**
 * A refresher pass in a process of its own: it prints "ready" once open, waits for "go" on stdin,
 * runs one pass and prints its report as the last JSON line. Used by the multi-worker test and the
 * sweep and scale-out benchmarks.
 */
export function startPassWorker<Report>(script: ChildScript, env: NodeJS.ProcessEnv) {
  const child: ChildProcess = spawn(process.execPath, [...script.nodeArgs, script.path], {
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
        : reject(new Error(`${script.path} exited ${code}: ${stderr}`)),
    );
  });
  return { child, ready, report };
}
