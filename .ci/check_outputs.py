"""Check that the notebooks' stored outputs are there, whole, and made by the current code.

    python .ci/check_outputs.py [NB ...]     # default: every notebook in nbs/

A notebook fails when
- it has no stamp (`metadata.repkit.outputs_hash`): it was never run by `python .ci/regen.py`;
- its stamp does not match its sources now (its code cells, the repkit modules and shipped weights it
  ran against; see the comment in .ci/regen.py): it was edited, or the library changed, since its
  outputs were made. The message names what changed;
- it has no output at all;
- a cell has an error output;
- a cell that draws a figure has no image output. A cell draws a figure when, outside any function or
  class it defines, it calls a pyplot drawing function (`plt.subplots`, `plt.imshow`, ...), a drawing
  method (`ax.plot`, `ax.imshow`, `.scatter`, ...), or a function named `plot_*`, `show_image*` or
  `draw_*`. Cells that send the figure to a file (`save_figure`, `savefig`, `plt.close`) and cells the
  reader's run skips are exempt.
- a cell the reader's run skips (`#| slow`, `#| cuda`) imports and also does something else: the docs build
  (`nbdev_proc_nbs`) executes every cell that imports, so such a cell would train or load checkpoints while
  the site is built. Its imports belong in a cell of their own.
Exits 1 with one line per problem; prints "outputs: N notebooks checked, M failed".
"""
import ast, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import regen

PLT_DRAW = {'subplots', 'subplot', 'figure', 'plot', 'imshow', 'scatter', 'hist', 'bar', 'barh', 'contour',
            'contourf', 'pcolormesh', 'quiver', 'matshow', 'show', 'stem', 'errorbar', 'fill_between',
            'semilogx', 'semilogy', 'loglog', 'boxplot', 'violinplot', 'step'}
AX_DRAW = {'plot', 'imshow', 'scatter', 'hist', 'bar', 'barh', 'contour', 'contourf', 'pcolormesh', 'quiver',
           'matshow', 'errorbar', 'fill_between', 'semilogx', 'semilogy', 'loglog', 'boxplot', 'violinplot',
           'stem', 'step'}
TO_FILE = {'save_figure', 'savefig', 'close'}
IMAGE_MIME = ('image/png', 'image/jpeg', 'image/svg+xml')

def _parse_cell(src: str):
    "The syntax tree of cell source `src` without its magics and shell lines, or None if it does not parse."
    src = '\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('%', '!')))
    try: return ast.parse(src)
    except SyntaxError: return None

def _top_level_calls(src: str):
    "Call nodes of cell source `src` outside the bodies of the functions and classes it defines."
    tree = _parse_cell(src)
    if tree is None: return []
    calls, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)): continue
        if isinstance(node, ast.Call): calls.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return calls

def _name(call):
    f = call.func
    if isinstance(f, ast.Name): return None, f.id
    if isinstance(f, ast.Attribute): return (f.value.id if isinstance(f.value, ast.Name) else '?'), f.attr
    return None, None

def draws_figure(src: str) -> bool:
    "Whether a code cell draws a figure that should show as an image output (the rule in the module doc)."
    names = [_name(c) for c in _top_level_calls(src)]
    if any(n in TO_FILE for _, n in names): return False
    for obj, n in names:
        if n is None: continue
        if obj == 'plt' and n in PLT_DRAW: return True
        if obj not in (None, 'plt') and n in AX_DRAW: return True
        if obj is None and n.startswith(('plot_', 'show_image', 'draw_')): return True
    return False

def imports_and_more(src: str) -> bool:
    "Whether cell source `src` holds an import and another statement (nbdev's docs build runs such cells)."
    tree = _parse_cell(src)
    if tree is None: return False
    imp = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))
    return imp and any(not isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body)

def check(path: Path) -> list[str]:
    "Problems with the stored outputs of notebook `path` (empty when it is fine)."
    nb = json.loads(path.read_text(encoding='utf-8'))
    name, probs = path.name, []
    cells = [c for c in nb['cells'] if c['cell_type'] == 'code']
    changed = regen.stale_sources(nb)
    if changed is None:
        probs.append(f"{name}: no outputs stamp: never regenerated (run: python .ci/regen.py nbs/{name})")
    elif changed:
        what = ', '.join('its code cells' if k == 'cells' else k for k in changed)
        probs.append(f"{name}: stored outputs are stale: {what} changed since they were made "
                     f"(run: python .ci/regen.py nbs/{name})")
    if not any(c.get('outputs') for c in cells): probs.append(f"{name}: no outputs at all")
    for j, c in enumerate(cells):
        src = ''.join(c['source'])
        first = src.strip().splitlines()[0][:70] if src.strip() else ''
        outs = c.get('outputs', [])
        for o in outs:
            if o['output_type'] == 'error':
                err = f"{o.get('ename')}: {o.get('evalue')}"
                probs.append(f"{name}: code cell {j + 1} ({first!r}) has an error output: {err}")
        if regen.skipped(src):
            if imports_and_more(src):
                probs.append(f"{name}: code cell {j + 1} ({first!r}) is skipped by the reader's run but imports: "
                             "the docs build would run all of it (move its imports to a cell of their own)")
            continue
        if draws_figure(src) and not any(k in o.get('data', {}) for o in outs for k in IMAGE_MIME):
            probs.append(f"{name}: code cell {j + 1} ({first!r}) draws a figure but has no image output")
    return probs

def main(argv):
    nbs = [Path(a).resolve() for a in argv] or regen.all_notebooks()
    failed = 0
    for p in nbs:
        probs = check(p)
        for line in probs: print(f"outputs: {line}")
        failed += bool(probs)
    print(f"outputs: {len(nbs)} notebooks checked, {failed} failed")
    return 1 if failed else 0

if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
