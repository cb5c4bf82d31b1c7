import { execFileSync } from 'node:child_process';

/**
 * Tests that run the CLI run the built one, as users do: build it once before the suites.
 * tsc emits even when a file has type errors; those fail `npm run typecheck` (run first in CI),
 * so here they are printed, not fatal.
 */
export default function setup(): void {
  try {
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
      stdio: 'pipe',
    });
  } catch (error) {
    const output = String((error as { stdout?: Buffer }).stdout ?? '');
    // In CI a type error fails the run here too, not only in `npm run typecheck`.
    if (process.env.CI === 'true') throw new Error(`the build failed:\n${output}`);
    console.warn(`[social-oauth tests] the build reported type errors:\n${output}`);
  }
}
