import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The dependency rule of docs/ARCHITECTURE.md ("Dependencies point one way"), checked on every
 * import under src/: static `import` and `export … from` (type-only ones too), `import('…')` and
 * `import('…').Type`. Tests beside the code (`*.test.ts`) are not layers and are skipped.
 */

const ROOT = join(import.meta.dirname, '..', '..');
const SRC = join(ROOT, 'src');

type Layer =
  | 'domain'
  | 'crypto'
  | 'contract'
  | 'simulatorKit'
  | 'platforms'
  | 'config'
  | 'store'
  | 'simulator'
  | 'service'
  | 'http'
  | 'cli'
  | 'root';

/** The simulator's server and its entry points: they list the platforms; the rest of the folder is the kit platforms build their routes with. */
const SIMULATOR_SERVER = new Set(['simulator/simulator.ts', 'simulator/main.ts', 'simulator/index.ts']);

/** Which layer a file under src/ (posix path relative to src/) belongs to. */
export function layerOf(file: string): Layer {
  if (file === 'index.ts') return 'root';
  if (file === 'config.ts') return 'config';
  const folder = file.split('/')[0];
  switch (folder) {
    case 'domain':
      return 'domain';
    case 'crypto':
      return 'crypto';
    case 'publishing':
      return 'contract';
    case 'platforms':
      return 'platforms';
    case 'store':
      return 'store';
    case 'service':
      return 'service';
    case 'http':
      return 'http';
    case 'cli':
      return 'cli';
    case 'simulator':
      return SIMULATOR_SERVER.has(file) ? 'simulator' : 'simulatorKit';
    default:
      throw new Error(`src/${file} is in no layer: add its folder to docs/ARCHITECTURE.md and this test`);
  }
}

/**
 * What each layer may import besides itself (the table in docs/ARCHITECTURE.md). The platform
 * registry and capability records are descriptions (names, labels, env names, capabilities), which
 * http and cli may read; a platform's client they reach only through the services.
 */
const MAY_IMPORT: Record<Layer, readonly Layer[]> = {
  domain: [],
  crypto: ['domain'],
  contract: ['domain'],
  simulatorKit: ['domain'],
  platforms: ['domain', 'contract', 'simulatorKit'],
  config: ['domain', 'platforms'],
  store: ['domain', 'crypto'],
  simulator: ['domain', 'simulatorKit', 'platforms'],
  service: ['domain', 'crypto', 'contract', 'platforms', 'config', 'store'],
  http: ['domain', 'crypto', 'config', 'service'],
  cli: ['domain', 'crypto', 'config', 'service', 'http', 'simulator'],
  root: ['domain', 'crypto', 'contract', 'platforms', 'config', 'service'],
};

/** Single files a layer may import from a layer it otherwise may not. */
const ALSO_MAY_IMPORT: Partial<Record<Layer, readonly string[]>> = {
  http: ['platforms/registry.ts', 'platforms/capabilities.ts'],
  cli: ['platforms/registry.ts', 'platforms/capabilities.ts'],
};

/** Files a layer may not import although their layer is allowed. */
const NEVER: Partial<Record<Layer, readonly string[]>> = {
  // The store's accessor is for tests and benchmarks: not public API, not for routes or commands.
  root: ['service/storeAccess.ts'],
  http: ['service/storeAccess.ts'],
  cli: ['service/storeAccess.ts'],
};

/** Why `from` may not import `to` (both posix paths relative to src/), or null when it may. */
export function violation(from: string, to: string): string | null {
  const source = layerOf(from);
  const target = layerOf(to);
  if (NEVER[source]?.includes(to)) return `${source} may not import ${to}`;
  if (source === target) return null;
  if (MAY_IMPORT[source].includes(target)) return null;
  if (ALSO_MAY_IMPORT[source]?.includes(to)) return null;
  return `${source} may not import ${target}`;
}

function sourceFiles(folder: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) found.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

/** Every module specifier the file names, with its line. */
export function importsOf(fileName: string, text: string): Array<{ specifier: string; line: number }> {
  const file = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: Array<{ specifier: string; line: number }> = [];
  const add = (node: ts.Node, literal: ts.Expression | undefined) => {
    if (literal && ts.isStringLiteralLike(literal)) {
      found.push({
        specifier: literal.text,
        line: file.getLineAndCharacterOfPosition(node.getStart()).line + 1,
      });
    }
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node, node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference))
      add(node, node.moduleReference.expression);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword)
      add(node, node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument))
      add(node, node.argument.literal as ts.Expression);
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

/** `../store/x.js` from src/http/a.ts → `store/x.ts`; null for packages and node: modules. */
function resolveWithinSrc(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const target = posix.normalize(posix.join(posix.dirname(from), specifier)).replace(/\.js$/, '.ts');
  if (target.startsWith('../')) throw new Error(`src/${from} imports ${specifier}, outside src/`);
  return target;
}

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
