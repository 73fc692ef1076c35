#!/usr/bin/env python3
"""Check that repkit's imports point one way, and print structure statistics.

Reads repkit/*.py with `ast` (no module is imported). An edge A -> B is any import of repkit
module B in module A: at module level, inside a function body, or by name (a string constant
equal to 'repkit.B' in a module that calls `importlib.import_module`, the way a lazy table of
'module', 'function' pairs imports its entries). The check fails (exit 1) when

- the edges form a cycle (module-level and function-level edges together), or
- a module other than repkit.cli imports repkit.cli, or
- a module defines one function or class name twice at module level (the later definition silently
  replaces the earlier one for every caller; fastcore `@patch` methods are exempt).

It also prints: module-level cycles, function-level imports (all, and those of repkit modules),
the median length of exported notebook cells (non-blank lines other than `#|` directives, of the
`#| export` / `#| exports` cells in nbs/), and the share of those lines longer than 110 characters.

Usage: python .ci/check_imports.py [ROOT]   (ROOT defaults to the repository this file is in)
"""
import ast, json, statistics, sys
from pathlib import Path

PKG = 'repkit'
MAX_LINE = 110


def module_name(path: Path) -> str:
    return f'{PKG}.{path.stem}' if path.stem != '__init__' else PKG


def resolve(node, current: str, modules: set) -> list:
    "The repkit modules an Import/ImportFrom names (`from repkit import x`: repkit.x if x is a module)."
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    base = node.module or ''
    if node.level:
        parent = current.rsplit('.', node.level)[0]
        base = f'{parent}.{base}' if base else parent
    found = [base] if base in modules and base != PKG else []
    found += [f'{base}.{a.name}' for a in node.names if f'{base}.{a.name}' in modules]
    return found


class Imports(ast.NodeVisitor):
    "Collect (target, line, level) for every import in a module; level is 'module' or 'function'."
    def __init__(self, current: str, modules: set):
        self.current, self.modules, self.depth = current, modules, 0
        self.edges, self.function_imports = [], 0
        self.strings, self.imports_by_name = [], False

    def _scope(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _scope

    def _import(self, node):
        level = 'function' if self.depth else 'module'
        if self.depth:
            self.function_imports += 1
        for target in resolve(node, self.current, self.modules):
            self.edges.append((target, node.lineno, level))

    visit_Import = visit_ImportFrom = _import

    def visit_Call(self, node):
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, 'id', '')
        if name == 'import_module':
            self.imports_by_name = True
            self.function_imports += bool(self.depth)
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and node.value in self.modules and node.value != PKG:
            self.strings.append((node.value, node.lineno, 'by name'))


def redefinitions(tree: ast.Module) -> list:
    "(name, first line, later line) for each function/class name defined twice at module level."
    seen, out = {}, []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        decos = {getattr(d, 'id', getattr(d, 'attr', '')) for d in getattr(node, 'decorator_list', [])}
        calls = [d.func for d in node.decorator_list if isinstance(d, ast.Call)]
        decos |= {getattr(f, 'id', getattr(f, 'attr', '')) for f in calls}
        if decos & {'patch', 'patch_to', 'overload', 'typedispatch'}:
            continue
        if node.name in seen:
            out.append((node.name, seen[node.name], node.lineno))
        seen[node.name] = node.lineno
    return out


def elementary_cycles(graph: dict, limit: int = 1000) -> list:
    "Every elementary cycle once, each starting at its smallest node (the graph is small)."
    cycles, nodes = [], sorted(graph)
    for start in nodes:
        stack = [(start, [start])]
        while stack and len(cycles) < limit:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    cycles.append(path)
                elif nxt > start and nxt not in path:
                    stack.append((nxt, path + [nxt]))
    return cycles


def exported_cells(nbs: Path) -> list:
    "Non-blank, non-directive lines of each exported code cell in nbs/*.ipynb."
    cells = []
    for nb in sorted(nbs.glob('*.ipynb')):
        for c in json.loads(nb.read_text())['cells']:
            src = ''.join(c['source']).splitlines()
            if c['cell_type'] != 'code' or not src:
                continue
            directives = [l.strip() for l in src if l.strip().startswith('#|')]
            if not any(d.split()[1:2] in (['export'], ['exports']) for d in directives):
                continue
            cells.append([l for l in src if l.strip() and not l.strip().startswith('#|')])
    return cells


def main(root: Path) -> int:
    files = sorted(p for p in (root / PKG).glob('*.py') if p.name != '_modidx.py')
    modules = {module_name(p) for p in files} | {PKG}
    graph, module_graph, where, problems = {}, {}, {}, []
    function_imports, per_file = 0, {}
    for p in files:
        me = module_name(p)
        v = Imports(me, modules)
        tree = ast.parse(p.read_text(), str(p))
        v.visit(tree)
        for name, first, later in redefinitions(tree):
            problems.append(f'{me} defines {name} twice at module level ({p.name}:{first} and :{later}); '
                            'the later one replaces the earlier for every caller')
        if v.imports_by_name:
            v.edges += v.strings
        function_imports += v.function_imports
        per_file[p.name] = v.function_imports
        for target, line, level in v.edges:
            if target in (me, PKG):
                continue
            graph.setdefault(me, set()).add(target)
            where.setdefault((me, target), f'{p.name}:{line} ({level})')
            if level == 'module':
                module_graph.setdefault(me, set()).add(target)
            if target == f'{PKG}.cli' and me != f'{PKG}.cli':
                problems.append(f'{me} imports {PKG}.cli at {p.name}:{line} ({level}-level)')
    short = lambda m: m.split('.', 1)[-1]
    all_cycles = elementary_cycles(graph)
    for cyc in all_cycles:
        hops = [f'{short(a)} -> {short(b)} [{where[(a, b)]}]' for a, b in zip(cyc, cyc[1:] + cyc[:1])]
        problems.append('import cycle: ' + '; '.join(hops))
    module_cycles = elementary_cycles(module_graph)
    cells = exported_cells(root / 'nbs')
    lines = [l for c in cells for l in c]
    long = sum(len(l) > MAX_LINE for l in lines)
    median = statistics.median(len(c) for c in cells) if cells else 0
    busiest = ', '.join(f'{f} {n}' for f, n in sorted(per_file.items(), key=lambda kv: -kv[1])[:4] if n)
    print(f'check_imports: {len(files)} modules, {sum(map(len, graph.values()))} import edges between them')
    print(f'  module-level cycles:            {len(module_cycles)}')
    print(f'  cycles incl. function-level:    {len(all_cycles)}')
    most = f' (most: {busiest})' if busiest else ''
    print(f'  function-level imports:         {function_imports}{most}')
    print(f'  median exported cell:           {median:g} non-blank lines ({len(cells)} cells)')
    share = 100 * long / max(len(lines), 1)
    print(f'  exported lines > {MAX_LINE} chars:      {share:.1f} % ({long} of {len(lines)})')
    if problems:
        print(f'check_imports: FAILED, {len(problems)} problem(s):')
        for pr in problems:
            print('  ' + pr)
        return 1
    print('check_imports: OK (no cycle, no chapter imports repkit.cli, no name defined twice)')
    return 0


if __name__ == '__main__':
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent))
