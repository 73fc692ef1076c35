"""Load an HTML page in headless Chromium, take a screenshot, and fail on a broken image or a script error.

    python .ci/browser_check.py PAGE.html [--screenshot OUT.png] [--min-images N] [--allow-remote]

Uses Debian's `chromium` and `chromium-driver` (/usr/bin/chromium, /usr/bin/chromedriver) through Selenium,
with a fresh profile and no background services. Before the page's own scripts run, a listener records
every uncaught script error and unhandled promise rejection; after the page has loaded (images forced to
load eagerly), every <img> must have decoded (`naturalWidth > 0`). The browser's console errors are
printed too. Host names are never resolved, so nothing is fetched from outside; a page that asks for
http(s) resources is not self-contained and fails, unless --allow-remote (nbconvert's pages ask for
require.js and MathJax). The screenshot (default: PAGE.screenshot.png) is of the whole page, cut at
MAX_SHOT_HEIGHT. Exits 1 naming each problem, or when the page holds fewer than N images (default 1);
2 when Chromium or its driver is missing.
"""
import argparse, base64, re, shutil, sys, tempfile, time
from pathlib import Path

CHROMIUM, DRIVER = '/usr/bin/chromium', '/usr/bin/chromedriver'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage', '--window-size=1200,900', '--hide-scrollbars',
         '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost']   # no name lookups at all
MAX_SHOT_HEIGHT = 12000    # CSS pixels of a full-page screenshot (a longer page is cut there)

# Runs before any script of the page: keeps uncaught errors and failed resource loads in window.__errors.
RECORDER = """
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  if (t && t !== window && t.tagName) {
    window.__errors.push({kind: 'resource', what: t.tagName + ' ' + (t.src || t.href || '')});
  } else {
    var where = (e.filename || '?') + ':' + (e.lineno || '?');
    window.__errors.push({kind: 'script', what: (e.message || 'error') + ' at ' + where});
  }
}, true);
window.addEventListener('unhandledrejection', function (e) {
  window.__errors.push({kind: 'script', what: 'unhandled rejection: ' + String(e.reason)});
});
"""
IMAGES = """
return Array.from(document.images).map(function (im) {
  return {src: (im.currentSrc || im.src || '').slice(0, 100), complete: im.complete, w: im.naturalWidth};
});
"""
EAGER = "document.querySelectorAll('img').forEach(function (i) { i.loading = 'eager'; });"
SETTLED = "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete);"

def start_browser():
    "A headless Chromium under chromedriver, with a fresh profile folder (returned too, to remove)."
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix='repkit-chromium-')
    for f in FLAGS + [f'--user-data-dir={profile}']:
        opts.add_argument(f)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    return webdriver.Chrome(service=Service(DRIVER), options=opts), profile

def screenshot(driver, out: Path):
    "A full-page PNG (up to MAX_SHOT_HEIGHT CSS pixels tall); returns its size in CSS pixels."
    m = driver.execute_cdp_cmd('Page.getLayoutMetrics', {})
    size = m.get('cssContentSize') or m['contentSize']
    clip = dict(x=0, y=0, width=size['width'], height=min(size['height'], MAX_SHOT_HEIGHT), scale=1)
    args = {'format': 'png', 'captureBeyondViewport': True, 'clip': clip}
    out.write_bytes(base64.b64decode(driver.execute_cdp_cmd('Page.captureScreenshot', args)['data']))
    return clip['width'], clip['height']

def check_page(page: Path, shot: Path, min_images: int = 1, allow_remote: bool = False,
               timeout: float = 30.0) -> list[str]:
    "Problems found on `page` (empty when it is fine); writes the screenshot to `shot`."
    driver, profile = start_browser()
    try:
        driver.execute_cdp_cmd('Page.addScriptToEvaluateOnNewDocument', {'source': RECORDER})
        driver.set_page_load_timeout(timeout)
        driver.get(page.resolve().as_uri())
        driver.execute_script(EAGER)
        t0 = time.time()
        while time.time() - t0 < timeout and not driver.execute_script(SETTLED):   # images settled
            time.sleep(0.2)
        images = driver.execute_script(IMAGES)
        errors = driver.execute_script('return window.__errors || [];')
        console = [e for e in driver.get_log('browser') if e.get('level') == 'SEVERE']
        w, h = screenshot(driver, shot)
        title = driver.title
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    broken = [im for im in images if not im['complete'] or im['w'] == 0]
    scripts = [e['what'] for e in errors if e['kind'] == 'script']
    probs = [f"image failed to load: {im['src']}" for im in broken] + [f"script error: {s}" for s in scripts]
    for e in console:   # an uncaught error the listener missed (it is installed before the page's scripts)
        msg = e.get('message', '')
        if 'Uncaught' in msg and not any(s.split(' at ')[0] in msg for s in scripts):
            probs.append(f"script error (console): {msg[:200]}")
    remote = sorted({e['message'].split()[0] for e in console if re.match(r'https?://', e.get('message', ''))})
    if not allow_remote:
        probs += [f"the page is not self-contained: it loads {u}" for u in remote]
    if len(images) < min_images:
        probs.append(f"the page has {len(images)} images, expected at least {min_images}")
    print(f"browser: {page}: title {title!r}, {len(images)} images ({len(images) - len(broken)} loaded, "
          f"{len(broken)} broken), {len(scripts)} script errors; screenshot {shot} ({w}x{h} CSS px)")
    for e in console:
        print(f"browser: console: {e.get('message', '')[:200]}")
    return probs

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('page', type=Path)
    ap.add_argument('--screenshot', type=Path, default=None, help='default: PAGE.screenshot.png beside it')
    ap.add_argument('--min-images', type=int, default=1)
    ap.add_argument('--allow-remote', action='store_true', help='pass pages that ask for http(s) files')
    a = ap.parse_args(argv)
    for p in (CHROMIUM, DRIVER):
        if not Path(p).exists():
            print(f"browser: {p} is missing (apt-get install chromium chromium-driver)")
            return 2
    if not a.page.exists():
        print(f"browser: no page {a.page}")
        return 1
    shot = a.screenshot or a.page.with_name(a.page.stem + '.screenshot.png')
    probs = check_page(a.page, shot, a.min_images, a.allow_remote)
    for p in probs:
        print(f"browser: FAIL: {p}")
    print(f"browser: {'FAILED' if probs else 'ok'}")
    return 1 if probs else 0

if __name__ == '__main__': sys.exit(main())
