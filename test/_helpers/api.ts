/**
 * The package's public API as its users' compiler sees it: the shipped
 * declaration files (dist/src/**\/*.d.ts) read with the TypeScript compiler.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from './paths.js';

interface ExportEntry {
  types: string;
  default: string;
}

/** Each package export ('.', './fdt', ...) and its declaration file. */
export function packageEntries(): { key: string; types: string }[] {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    exports: Record<string, string | ExportEntry>;
  };
  return Object.entries(pkg.exports).flatMap(([key, v]) =>
    typeof v === 'string' ? [] : [{ key, types: join(REPO_ROOT, v.types) }],
  );
}

/** The names (values and types) each package export offers, sorted. */
export function exportedNames(): Record<string, string[]> {
  const entries = packageEntries();
  const program = ts.createProgram(
    entries.map((e) => e.types),
    {
      strict: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      noEmit: true,
    },
  );
  const checker = program.getTypeChecker();
  const out: Record<string, string[]> = {};
  for (const e of entries) {
    const file = program.getSourceFile(e.types);
    const symbol = file && checker.getSymbolAtLocation(file);
    if (!symbol) throw new Error(`${e.key}: ${e.types} is not a module`);
    out[e.key] = checker
      .getExportsOfModule(symbol)
      .map((s) => s.name)
      .sort();
  }
  return out;
}

/** Every declaration file under dist/src (what package.json "files" publishes). */
export function shippedDeclarations(): string[] {
  return readdirSync(join(REPO_ROOT, 'dist', 'src'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.d.ts'))
    .map((f) => join(REPO_ROOT, 'dist', 'src', f));
}

/** The `_`-prefixed names a declaration file declares (members, parameters, exports), as `file: name`. */
export function underscoreNames(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    const name = (node as { name?: ts.Node }).name;
    if (name && ts.isIdentifier(name) && name.text.startsWith('_')) found.push(name.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}
