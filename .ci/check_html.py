"""Check that the docs build shows the stored outputs; render chapters to HTML and check them.

    python .ci/check_html.py [--proc] [--browser] [NB ...]   # default NBs: nbs/10_sde.ipynb nbs/14_ddim.ipynb

1. The Quarto configuration (nbs/_quarto.yml, nbs/nbdev.yml) does not turn on execution: the site renders
   the outputs stored in the notebooks (Quarto does not execute .ipynb files unless `execute: enabled: true`).
2. With --proc: `nbdev_proc_nbs` (what the docs build runs before Quarto) passes, and its processed copy
   of each NB in _proc/ keeps every image output of the source notebook.
3. Each NB is rendered with `jupyter nbconvert --to html` (Quarto cannot be installed here); the page must
   hold one <img> with decodable PNG/JPEG data per image output of the notebook (at least one), and no
   error output (an error renders as a stderr block naming an ...Error or a traceback).
4. With --browser: each page is loaded in headless Chromium by .ci/browser_check.py (every image decodes,
   no script error; nbconvert's CDN scripts for require.js and MathJax are allowed to be missing).
Exits 1 naming each problem; the HTML pages and screenshots go to $HTML_OUT (default: a temporary folder).
"""
import base64, json, os, re, subprocess, sys, tempfile
from html.parser import HTMLParser
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import regen
from check_outputs import IMAGE_MIME

ROOT = regen.ROOT
DEFAULT = ['nbs/10_sde.ipynb', 'nbs/14_ddim.ipynb']
ERROR_RE = re.compile(r'Traceback \(most recent call last\)|^\s*\w*(Error|Exception)\b[^\n]*:', re.M)

class _Page(HTMLParser):
    "Collects <img> sources and the text of stderr output blocks of an nbconvert page."
    def __init__(self):
        super().__init__()
        self.imgs, self.stderr, self._depth = [], [], 0
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'img': self.imgs.append(a.get('src') or '')
        if self._depth: self._depth += tag == 'div'
        elif tag == 'div' and a.get('data-mime-type') == 'application/vnd.jupyter.stderr':
            self._depth = 1
            self.stderr.append('')
    def handle_endtag(self, tag):
        if self._depth and tag == 'div': self._depth -= 1
    def handle_data(self, data):
        if self._depth: self.stderr[-1] += data

def _image_ok(src: str) -> bool:
    "Whether an <img> src is inline PNG/JPEG data that starts like a real image of non-zero size."
    m = re.match(r'data:image/(png|jpeg);base64,(.*)', src, re.S)
    if not m: return False
    b = base64.b64decode(m.group(2))
    if m.group(1) == 'png': return b[:8] == b'\x89PNG\r\n\x1a\n' and int.from_bytes(b[16:20], 'big') > 0
    return b[:2] == b'\xff\xd8'

def n_image_outputs(nb: dict) -> int:
    outs = [o for c in nb['cells'] for o in c.get('outputs', [])]
    return sum(any(k in o.get('data', {}) for k in IMAGE_MIME) for o in outs)

def check_config() -> list[str]:
    import yaml
    probs = []
    for f in ('nbs/_quarto.yml', 'nbs/nbdev.yml'):
        p = ROOT / f
        if not p.exists(): continue
        ex = (yaml.safe_load(p.read_text()) or {}).get('execute', {}) or {}
        if ex.get('enabled') is True or ex.get('freeze') not in (None, False):
            probs.append(f"{f} turns on execution ({ex}): the site would not show the stored outputs")
    return probs

def check_proc(nbs) -> list[str]:
    cmd = [str(Path(sys.executable).parent / 'nbdev_proc_nbs')]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode: return [f"nbdev_proc_nbs failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}"]
    probs = []
    for p in nbs:
        proc = ROOT / '_proc' / p.relative_to(ROOT / 'nbs')
        if not proc.exists(): probs.append(f"nbdev_proc_nbs wrote no {proc.relative_to(ROOT)}"); continue
        a, b = n_image_outputs(json.loads(p.read_text())), n_image_outputs(json.loads(proc.read_text()))
        if b < a: probs.append(f"{proc.relative_to(ROOT)} keeps {b} of the {a} image outputs of {p.name}")
    return probs

def check_page(nb_path: Path, out: Path, browser: bool) -> list[str]:
    nb = json.loads(nb_path.read_text())
    cmd = [sys.executable, '-m', 'nbconvert', '--to', 'html', '--output-dir', str(out), str(nb_path)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    page = out / (nb_path.stem + '.html')
    if r.returncode or not page.exists(): return [f"{nb_path.name}: nbconvert failed: {r.stderr[-1500:]}"]
    parser = _Page()
    parser.feed(page.read_text(encoding='utf-8'))
    want, good = n_image_outputs(nb), sum(map(_image_ok, parser.imgs))
    probs = []
    if want == 0: probs.append(f"{nb_path.name}: the notebook has no image output to render")
    if good < want: probs.append(f"{page.name}: {good} images with data, the notebook has {want} image outputs")
    for s in parser.stderr:
        if ERROR_RE.search(s): probs.append(f"{page.name}: an error output: {s.strip()[:200]}")
    print(f"html: {page}: {len(parser.imgs)} <img> ({good} with image data; {want} image outputs), "
          f"{len(parser.stderr)} stderr blocks, {page.stat().st_size / 1e6:.2f} MB")
    if browser:
        import browser_check
        shot = out / f'{nb_path.stem}.screenshot.png'
        found = browser_check.check_page(page, shot, min_images=max(want, 1), allow_remote=True)
        probs += [f"{page.name}: {p}" for p in found]
    return probs

def main(argv):
    flags = {a for a in argv if a.startswith('--')}
    nbs = [(ROOT / a).resolve() for a in argv if not a.startswith('--')]   # ROOT / an absolute path: that path
    nbs = nbs or [ROOT / p for p in DEFAULT]
    out = Path(os.environ.get('HTML_OUT') or tempfile.mkdtemp(prefix='repkit-html-'))
    out.mkdir(parents=True, exist_ok=True)
    probs = check_config()
    if '--proc' in flags: probs += check_proc(nbs)
    for p in nbs: probs += check_page(p, out, '--browser' in flags)
    for p in probs: print(f"html: FAIL: {p}")
    print(f"html: {len(nbs)} pages in {out}: {'FAILED' if probs else 'ok'}")
    return 1 if probs else 0

if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
