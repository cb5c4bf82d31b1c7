import { readdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import ts from 'typescript';

/**
 * The dependency rule of docs/ARCHITECTURE.md ("Dependencies point one way") as data, and the
 * reading of imports that test/architecture/dependencies.test.ts checks against it.
 */

export const ROOT = join(import.meta.dirname, '..', '..');
export const SRC = join(ROOT, 'src');

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

export function sourceFiles(folder: string): string[] {
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
export function resolveWithinSrc(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const target = posix.normalize(posix.join(posix.dirname(from), specifier)).replace(/\.js$/, '.ts');
  if (target.startsWith('../')) throw new Error(`src/${from} imports ${specifier}, outside src/`);
  return target;
}
