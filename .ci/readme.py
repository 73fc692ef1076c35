"""Write README.md from nbs/index.ipynb (Quarto, which nbdev_readme needs, cannot run here).

`python .ci/readme.py` rewrites README.md; `python .ci/readme.py --check` exits 1 if it is out of date.
"""
import json, sys, pathlib

root = pathlib.Path(__file__).resolve().parent.parent

def render(nb_path):
    nb = json.loads(nb_path.read_text())
    parts = []
    for c in nb['cells']:
        src = ''.join(c['source']).strip('\n')
        if not src or src.lstrip().startswith('#| hide'): continue
        if c['cell_type'] == 'markdown': parts.append(src)
        elif c['cell_type'] == 'code': parts.append('```python\n' + src + '\n```')
    head = '<!-- Generated from nbs/index.ipynb by .ci/readme.py: edit the notebook, not this file. -->\n\n'
    return head + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text = render(root / 'nbs' / 'index.ipynb')
    readme = root / 'README.md'
    if '--check' in sys.argv:
        if not readme.exists() or readme.read_text() != text:
            print('README.md is out of date with nbs/index.ipynb: run python .ci/readme.py'); sys.exit(1)
    else:
        readme.write_text(text)
