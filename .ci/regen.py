"""Regenerate the stored outputs of repkit's notebooks: the reader's run, top to bottom.

    python .ci/regen.py                      # every notebook in nbs/ (as nbdev_test chooses them)
    python .ci/regen.py nbs/10_sde.ipynb ... # some of them
    python .ci/regen.py --stale              # only those whose stamp is missing or out of date

    python .ci/regen.py --flags "notest" ... # also run cells with these test flags (as nbdev_test --flags)

Each notebook runs in a fresh Python process (as a reader's fresh kernel), with `IN_TEST` removed from
the environment, in nbs/ as working directory. Cells marked with a test flag (`#| slow`, `#| cuda`,
`#| notest`) or `#| eval: false` are not run and keep no output (their prose says where their numbers are). Figures are stored as PNG
at `DPI`. The executed notebook is cleaned exactly as `nbdev_clean` cleans it, stamped with the hash of
the sources it ran against (see `source_hash`), and written atomically (temporary file + rename). A cell
that raises stops that notebook: it is left untouched, the cell is named, the other notebooks still run,
and the command exits 1. A progress line per notebook gives its wall and CPU time and an estimate of the
time left (from the seconds each notebook's last regeneration recorded in its stamp). Don't edit a
notebook while it is being regenerated: the run notices and refuses to overwrite it.
"""
import ast, hashlib, json, os, re, resource, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS, LIB = ROOT / 'nbs', ROOT / 'repkit'
DPI = 80                     # PNG resolution of stored figures: keeps nbs/ well under 25 MB
META_KEY = 'repkit'          # notebook metadata key (listed in settings.ini allowed_metadata_keys)
HASH_VERSION = 1             # bump when the rule below changes: every stamp then reads as stale
# Cells carrying one of settings.ini's tst_flags (notest slow cuda) are left out, as nbdev_test leaves them
# out: `slow` (training) and `cuda` cannot be the reader's CPU run, and the one `notest` cell (90_cli's whole
# quick tour) would make this command tens of minutes longer. `--flags "notest"` runs them, as nbdev_test's.
def skip_flags() -> set[str]:
    from nbdev.config import get_config
    run = set(os.environ.get('REGEN_FLAGS', '').split())
    return set(get_config().tst_flags.split()) - run

# ---------------------------------------------------------------------------------------------------
# What the stamp covers. Stored outputs are stale when the code that made them changed, so the hash
# covers (1) the notebook's code cells, in order, directives included (they decide what runs); markdown
# is left out, since prose changes no output; (2) every repkit/*.py module the run could execute: the
# modules the notebook imports, directly or through other repkit modules (static imports, and
# 'repkit.x' strings for importlib), together with every repkit module loaded by the end of the run.
# So an edit to repkit/sde.py stales 11_gaussian, but an edit to repkit/meru.py does not stale it:
# only notebooks that can see a change go stale, and the lead regenerates only those. _modidx.py
# (nbdev's doc-link index) and the `__version__` line of __init__.py change no output and are left out.
# (3) the files under repkit/weights/ that the run opened (seen by an audit hook): a retrained
# checkpoint changes every figure drawn from it. The stamp records each source with its own hash, so
# the check recomputes exactly these and can say which one changed. Package versions (torch,
# matplotlib) are not covered: the check is about repkit's code, not the environment.
# ---------------------------------------------------------------------------------------------------

def _imports(src: str) -> set[str]:
    "Names of repkit modules that Python source `src` imports (relative imports are read as repkit's)."
    src = '\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('%', '!')))
    try: tree = ast.parse(src)
    except SyntaxError: return {m for m in re.findall(r'\brepkit\.(\w+)', src) if (LIB / f'{m}.py').exists()}
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name.split('.')[1] for a in node.names if a.name.startswith('repkit.'))
        elif isinstance(node, ast.ImportFrom):
            name = ('repkit.' if node.level else '') + (node.module or '')
            parts = name.strip('.').split('.')
            if parts[0] != 'repkit': continue
            if len(parts) > 1: mods.add(parts[1])
            else: mods.update(a.name for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = re.fullmatch(r'repkit\.(\w+)', node.value)   # importlib.import_module('repkit.drl')
            if m: mods.add(m.group(1))
    return {m for m in mods if (LIB / f'{m}.py').exists() and m != '_modidx'}

def module_closure(code: str) -> set[str]:
    "The repkit modules that notebook code `code` can run: its imports and theirs, transitively."
    todo, seen = list(_imports(code)), set()
    while todo:
        m = todo.pop()
        if m in seen: continue
        seen.add(m)
        todo.extend(_imports((LIB / f'{m}.py').read_text()) - seen)
    return seen

def _sha(b: bytes) -> str: return hashlib.sha256(b).hexdigest()

def code_cells(nb: dict) -> list[str]:
    return [''.join(c['source']) if isinstance(c['source'], list) else c['source']
            for c in nb['cells'] if c['cell_type'] == 'code']

def _file_hash(rel: str) -> str:
    p = ROOT / rel
    if not p.exists(): return 'missing'
    if rel == 'repkit/__init__.py':
        kept = [l for l in p.read_text().splitlines() if not l.startswith('__version__')]
        return _sha('\n'.join(kept).encode())
    return _sha(p.read_bytes())

def source_parts(nb: dict, extra=()) -> dict[str, str]:
    "Hash of each source the outputs of `nb` depend on: 'cells', repkit/x.py and repkit/weights/y.pt files."
    cells = code_cells(nb)
    files = {f'repkit/{m}.py' for m in module_closure('\n'.join(cells))} | set(extra)
    return {'cells': _sha(json.dumps(cells).encode()), **{f: _file_hash(f) for f in sorted(files)}}

def source_hash(parts: dict[str, str]) -> str:
    return _sha(json.dumps([HASH_VERSION, sorted(parts.items())]).encode())[:16]

def stamp(nb: dict, extra=()) -> dict:
    "The metadata stamp: the overall hash and a short hash of each source (so a check can name what changed)."
    parts = source_parts(nb, extra)
    return {'outputs_hash': source_hash(parts), 'sources': {k: v[:12] for k, v in parts.items()}}

def stale_sources(nb: dict) -> list[str] | None:
    "None if `nb` has no stamp; else the sources that changed since its outputs were made ([]: up to date)."
    st = nb.get('metadata', {}).get(META_KEY, {})
    if 'outputs_hash' not in st: return None
    parts = source_parts(nb, [k for k in st.get('sources', {}) if k != 'cells'])
    if source_hash(parts) == st['outputs_hash']: return []
    old = st.get('sources', {})
    return [k for k, v in parts.items() if old.get(k) != v[:12]] or ['the stamp rule (HASH_VERSION)']

def _watch_weights() -> set[str]:
    "Start recording which files under repkit/weights/ this process opens; returns the (growing) set."
    opened, wdir = set(), str(LIB / 'weights') + os.sep
    def hook(event, args):
        if event == 'open' and isinstance(args[0], (str, os.PathLike)):
            p = os.path.abspath(os.fspath(args[0]))
            if p.startswith(wdir): opened.add(os.path.relpath(p, ROOT))
    sys.addaudithook(hook)
    return opened

def _loaded_modules() -> set[str]:
    return {f'repkit/{n.split(".")[1]}.py' for n in sys.modules
            if n.startswith('repkit.') and n.count('.') == 1 and n != 'repkit._modidx'}

# ---------------------------------------------------------------------------------------------------
# Running one notebook (in a child process).
# ---------------------------------------------------------------------------------------------------

def skipped(src: str) -> str | None:
    "Why a code cell is not run in the reader's run, or None if it is."
    from nbdev.process import extract_directives
    from fastcore.basics import AttrDict
    d = extract_directives(AttrDict(source=src), remove=False)
    if 'nbdev_export' + '(' in src: return 'nbdev_export'
    if d.get('eval:', [''])[0].lower() == 'false': return 'eval: false'
    hit = skip_flags() & d.keys()
    return f'#| {sorted(hit)[0]}' if hit else None

def run_one(path: Path) -> int:
    "Execute notebook `path` and write it back with outputs. Exit status 0, or 1 naming the failing cell."
    sys.path.insert(0, str(ROOT))    # this checkout's repkit, whatever is installed
    from execnb.nbio import read_nb, nb2str
    from execnb.shell import CaptureShell
    from nbdev.clean import clean_nb
    from nbdev.config import get_config
    from fastcore.xtras import working_directory
    t0 = time.time()
    original = path.read_bytes()
    nb = read_nb(path)
    opened = _watch_weights()
    sh = CaptureShell(path, mpl_format='png')
    sh.run(f"set_matplotlib_formats('png', dpi={DPI})")
    cells = [c for c in nb.cells if c.cell_type == 'code']
    with working_directory(path.parent):
        for j, cell in enumerate(cells):
            cell.outputs = []
            if skipped(cell.source): continue
            # A trailing ';' hides the cell's result in Jupyter, but execnb also drops all the cell's printed
            # output then; run the cell without it and drop only the result, as Jupyter does.
            quiet = cell.source.rstrip().endswith(';')
            outs = sh.run(cell.source.rstrip()[:-1] if quiet else cell.source)
            cell.outputs = [dict(o) for o in outs if not (quiet and o['output_type'] == 'execute_result')]
            if sh.exc is not None:
                first = next((l for l in cell.source.splitlines() if l.strip() and not l.startswith('#|')), '')
                tb = ''.join(next(o for o in outs if o['output_type'] == 'error')['traceback'])
                print(f"regen: {path.name}: code cell {j + 1} of {len(cells)} (notebook cell {cell.idx_}) "
                      f"raised "
                      f"{type(sh.exc).__name__}: {sh.exc}\n  cell starts: {first[:100]}\n{tb}", file=sys.stderr)
                return 1
    cfg = get_config()
    d = json.loads(nb2str(nb))
    clean_nb(d, False, cfg.get('allowed_metadata_keys').split(), cfg.get('allowed_cell_metadata_keys').split(),
             cfg.clean_ids)
    d['metadata'][META_KEY] = stamp(d, opened | _loaded_modules())
    d['metadata'][META_KEY]['seconds'] = round(time.time() - t0)   # this run's time: the next run's estimate
    text = json.dumps(d, sort_keys=True, indent=1, ensure_ascii=False) + '\n'
    if path.read_bytes() != original:
        print(f"regen: {path.name} was edited while it ran: not overwritten (run it again)", file=sys.stderr)
        return 1
    tmp = path.with_name(f'.{path.name}.regen-tmp')
    tmp.write_text(text, encoding='utf-8')
    os.replace(tmp, path)
    return 0

# ---------------------------------------------------------------------------------------------------
# The command: one child per notebook, a progress line each, then nbdev_clean (must change nothing).
# ---------------------------------------------------------------------------------------------------

def all_notebooks() -> list[Path]:
    from nbdev.doclinks import nbglob
    return sorted(Path(p) for p in nbglob(str(NBS), skip_folder_re='^[_.]', skip_file_re='^[_.]'))

def _nbdev_clean() -> str:
    "The nbdev_clean beside this Python (a virtual environment's), else the one on PATH."
    here = Path(sys.executable).parent / 'nbdev_clean'
    return str(here) if here.exists() else 'nbdev_clean'

def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def _previous_seconds(p: Path):
    "How long the last regeneration of notebook `p` took (from its stamp), or None."
    try: return json.loads(p.read_text(encoding='utf-8'))['metadata'][META_KEY]['seconds']
    except (KeyError, ValueError, TypeError): return None

def main(argv):
    if len(argv) >= 2 and argv[0] == '--one': return run_one(Path(argv[1]).resolve())
    stale_only = '--stale' in argv
    argv = [a for a in argv if a != '--stale']
    if '--flags' in argv:
        i = argv.index('--flags')
        os.environ['REGEN_FLAGS'] = argv[i + 1]      # the children inherit it
        argv = argv[:i] + argv[i + 2:]
    nbs = [Path(a).resolve() for a in argv] or all_notebooks()
    if stale_only:
        nbs = [p for p in nbs if stale_sources(json.loads(p.read_text(encoding='utf-8'))) != []]
        print(f"regen: {len(nbs)} notebooks with missing or stale outputs: {' '.join(p.name for p in nbs)}")
    for p in nbs:
        if not p.exists() or p.suffix != '.ipynb': sys.exit(f"regen: no notebook {p}")
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    env.setdefault('MPLBACKEND', 'agg')
    paths = [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p]
    env['PYTHONPATH'] = os.pathsep.join([str(ROOT)] + paths)
    t_all, done, failed = time.time(), 0.0, []
    previous = {p: _previous_seconds(p) for p in nbs}
    for i, p in enumerate(nbs):
        t0 = time.time()
        cpu0 = _children_cpu()
        before = p.read_bytes()
        rc = subprocess.run([sys.executable, __file__, '--one', str(p)], env=env, cwd=str(ROOT)).returncode
        dt = time.time() - t0
        cpu = _children_cpu() - cpu0
        done += dt
        left = len(nbs) - i - 1
        mean = done / (i + 1)
        rest = sum(previous[q] if previous[q] is not None else mean for q in nbs[i + 1:])
        eta = f", about {rest / 60:.1f} min left for {left}" if left else ''
        status = 'ok' if rc == 0 else 'FAILED'
        if rc == 0:
            # nbdev_clean must leave the written notebook as it is (clear_all = False keeps the outputs)
            written = p.read_bytes()
            subprocess.run([_nbdev_clean(), '--fname', str(p)], cwd=str(ROOT), check=True)
            if p.read_bytes() != written:
                failed.append(p.name)
                status = 'FAILED (nbdev_clean changed the regenerated notebook: regen.py cleans differently)'
            size = p.stat().st_size
            status += f', {size / 1e6:.2f} MB' + (', unchanged' if p.read_bytes() == before else '')
        else: failed.append(p.name)
        line = f"[{i + 1}/{len(nbs)}] {p.relative_to(ROOT)}: {dt:.0f}s ({cpu:.0f}s CPU), {status}{eta}"
        print(line, flush=True)
    print(f"regen: {len(nbs) - len(failed)} of {len(nbs)} notebooks in {time.time() - t_all:.0f}s"
          + (f"; FAILED: {' '.join(failed)}" if failed else ''))
    return 1 if failed else 0

if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
