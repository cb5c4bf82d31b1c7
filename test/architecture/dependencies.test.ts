import { readFileSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importsOf, resolveWithinSrc, SRC, sourceFiles, violation } from './layers.js';

/**
 * The dependency rule of docs/ARCHITECTURE.md ("Dependencies point one way"), checked on every
 * import under src/: static `import` and `export … from` (type-only ones too), `import('…')` and
 * `import('…').Type`. Tests beside the code (`*.test.ts`) are not layers and are skipped. The rule
 * itself is in ./layers.ts.
 */

describe('dependencies point one way (docs/ARCHITECTURE.md)', () => {
  it('no file under src/ imports a layer its layer may not', () => {
    const files = sourceFiles(SRC);
    const problems: string[] = [];
    let checked = 0;
    for (const path of files) {
      const from = relative(SRC, path).split(sep).join('/');
      for (const { specifier, line } of importsOf(path, readFileSync(path, 'utf8'))) {
        const to = resolveWithinSrc(from, specifier);
        if (to === null) continue;
        checked++;
        const why = violation(from, to);
        if (why !== null) problems.push(`src/${from}:${line} imports '${specifier}': ${why}`);
      }
    }
    // The walk found the code (a wrong root would pass with nothing checked).
    expect(files.length).toBeGreaterThan(100);
    expect(checked).toBeGreaterThan(500);
    expect(problems).toEqual([]);
  });

  it('the rule names each forbidden direction (a check of the checker)', () => {
    expect(violation('domain/refreshPolicy.ts', 'platforms/provider.ts')).toBe(
      'domain may not import platforms',
    );
    expect(violation('store/publicationRepository.ts', 'publishing/platformPublisher.ts')).toBe(
      'store may not import contract',
    );
    expect(violation('http/context.ts', 'store/apiKeyRepository.ts')).toBe('http may not import store');
    expect(violation('cli/commands/migrate.ts', 'store/migrations.ts')).toBe('cli may not import store');
    expect(violation('http/routes/connect.ts', 'platforms/tiktok/oauthClient.ts')).toBe(
      'http may not import platforms',
    );
    expect(violation('index.ts', 'store/accountRepository.ts')).toBe('root may not import store');
    expect(violation('index.ts', 'service/storeAccess.ts')).toBe(
      'root may not import service/storeAccess.ts',
    );
    expect(violation('simulator/state.ts', 'platforms/platform.ts')).toBe(
      'simulatorKit may not import platforms',
    );
    expect(violation('platforms/registry.ts', 'simulator/simulator.ts')).toBe(
      'platforms may not import simulator',
    );
    expect(violation('http/routes/connect.ts', 'platforms/registry.ts')).toBeNull();
    expect(violation('service/socialOAuth.ts', 'store/database.ts')).toBeNull();
  });

  it('reads every form of import, type-only ones included', () => {
    const text = [
      "import type { A } from '../store/a.js';",
      "import { type B, C } from '../store/b.js';",
      "import '../store/c.js';",
      "export { D } from '../store/d.js';",
      "export type { E } from '../store/e.js';",
      "export * from '../store/f.js';",
      "const g = await import('../store/g.js');",
      "let h: import('../store/h.js').H;",
      'import {',
      '  I,',
      "} from '../store/i.js';",
    ].join('\n');
    expect(importsOf('x.ts', text).map((found) => found.specifier)).toEqual(
      ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].map((name) => `../store/${name}.js`),
    );
    expect(importsOf('x.ts', text).at(-1)!.line).toBe(9);
  });
});
