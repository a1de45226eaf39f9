"""Load every example workflow into ComfyUI's real web front end, the way a user does, and report problems.

The front end checks a workflow against its schema before loading it, and lists node types it does not
know; both show up as toasts / dialogs, never as errors the server sees. This drives headless Chromium
(Debian's ``chromium``, through the ``playwright`` package; no browser download) against a running
server and, for each workflow, opens it twice: as the Templates browser does (``loadGraphData`` on the
JSON served at /api/workflow_templates/...) and as a drag-and-drop does (``handleFile``). It then asks
the front end for the API prompt (``graphToPrompt``), which tests can compare with their own conversion,
and checks that the workflow opens framed: at 1600x1000 every node is in view without panning (not
under the tab bar, the side bar or the minimap, not outside the window), and that no node on the
canvas is one the host marks deprecated (shown "(DEPRECATED)" in its title).

Command line (starts its own server from COMFYUI_DIR, or uses --url):
    python tests/real_host/check_frontend.py [--url http://127.0.0.1:8188] [--screenshots DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from comfy_server import PACK_DIR_NAME, REPO_ROOT, ComfyServer, comfyui_dir_from_env  # noqa: E402
from workflow_to_api import for_host  # noqa: E402

VIEWPORT = (1600, 1000)  # every example workflow must open with all its nodes in view at this size
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def browser_missing_reason() -> str | None:
    """Why the front-end check cannot run here, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the 'playwright' Python package is not installed (pip install playwright; no browser download needed)"
    if chromium_path() is None:
        return "no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)"
    return None


# Runs in the page: loads one workflow and collects what the user would see.
LOAD_SCRIPT = """
async ([how, name, text]) => {
  const app = window.comfyAPI.app.app;
  const data = JSON.parse(text);
  if (how === 'template') {
    await app.loadGraphData(data, true, true, name);
  } else {
    await app.handleFile(new File([text], name + '.json', {type: 'application/json'}));
  }
  await new Promise(r => setTimeout(r, 1500));
  const known = window.LiteGraph ? window.LiteGraph.registered_node_types : null;
  const nodes = app.graph.nodes.map(n => ({
    id: n.id, type: n.type, title: n.title, known: known ? (n.type in known) : null,
    deprecated: !!(known && known[n.type] && known[n.type].nodeData && known[n.type].nodeData.deprecated),
    widgets: (n.widgets || []).map(w => [w.name, w.value, !!(w.advanced || (w.options && w.options.advanced))]),
  }));
  let output = null, error = null;
  try { output = (await app.graphToPrompt()).output; } catch (e) { error = String(e); }
  return {nodes, output, error, links: (app.graph.links instanceof Map) ? app.graph.links.size
          : Object.keys(app.graph.links || {}).length};
}
"""

VISIBLE_MESSAGES = """
() => {
  const texts = [];
  for (const el of document.querySelectorAll('.p-toast-message, .p-dialog')) {
    if (el.offsetParent !== null || getComputedStyle(el).position === 'fixed') texts.push(el.innerText.trim());
  }
  return texts.filter(t => t.length > 0);
}
"""

# Runs in the page: which nodes a user cannot see whole without panning. Points on a grid over each
# node (title bar included) are hit-tested: a point is in view when the topmost element there is the
# graph canvas or a widget drawn in a node (a text box); anything else (the toolbar, the side bar, the
# minimap) or the point being outside the window hides it.
NODES_OUT_OF_VIEW = """
() => {
  const app = window.comfyAPI.app.app;
  const canvas = app.canvas, element = canvas.canvas;
  const box = element.getBoundingClientRect();
  const scale = canvas.ds.scale, [ox, oy] = canvas.ds.offset, title = window.LiteGraph.NODE_TITLE_HEIGHT;
  const describe = (hit) => !hit ? 'outside the window' : hit.tagName.toLowerCase() + (hit.id ? '#' + hit.id : '')
    + (typeof hit.className === 'string' && hit.className.trim()
       ? '.' + hit.className.trim().split(/\\s+/).slice(0, 2).join('.') : '');
  const out = [];
  for (const node of app.graph.nodes) {
    const [x, y, w, h] = node.boundingRect ? Array.from(node.boundingRect)
      : [node.pos[0], node.pos[1] - title, node.size[0], node.size[1] + title];
    const left = box.left + (x + ox) * scale, top = box.top + (y + oy) * scale;
    const right = left + w * scale, bottom = top + h * scale;
    const cols = Math.ceil((right - left) / 20) + 1, rows = Math.ceil((bottom - top) / 20) + 1;
    const under = {};
    let hidden = 0;
    for (let i = 0; i < cols; i++) {
      for (let j = 0; j < rows; j++) {
        const px = left + 2 + (right - left - 4) * i / (cols - 1), py = top + 2 + (bottom - top - 4) * j / (rows - 1);
        const inside = px >= 0 && py >= 0 && px < window.innerWidth && py < window.innerHeight;
        const hit = inside ? document.elementFromPoint(px, py) : null;
        if (hit === element || (hit && hit.closest('.dom-widget'))) continue;
        hidden += 1;
        under[describe(hit)] = (under[describe(hit)] || 0) + 1;
      }
    }
    if (hidden) out.push({id: node.id, type: node.type, rect: [left, top, right, bottom].map(Math.round),
                          hidden, points: cols * rows, under});
  }
  return out;
}
"""

CLOSE_MESSAGES = """
() => {
  for (const b of document.querySelectorAll('.p-toast-close-button, .p-dialog-close-button, .p-dialog-header-close')) b.click();
}
"""


class FrontendSession:
    """A browser page on the ComfyUI front end; use as a context manager."""

    def __init__(self, base_url: str, screenshots: Path | None = None):
        self.base_url = base_url.rstrip("/")
        self.screenshots = screenshots
        self.console: list[str] = []

    def __enter__(self) -> "FrontendSession":
        from playwright.sync_api import sync_playwright

        # Settings a returning user has: no first-run template dialog over the canvas.
        _post_json(self.base_url + "/api/settings", {"Comfy.TutorialCompleted": True})
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        self.page = self.browser.new_page(viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]})
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.goto(self.base_url + "/", wait_until="load", timeout=120_000)
        self.page.wait_for_function(
            "() => window.comfyAPI && window.comfyAPI.app && window.comfyAPI.app.app"
            " && window.comfyAPI.app.app.vueAppReady && window.comfyAPI.app.app.graph", timeout=120_000)
        self.page.wait_for_timeout(2000)
        self.page.evaluate(CLOSE_MESSAGES)
        self.page.keyboard.press("Escape")
        return self

    def __exit__(self, *exc) -> None:
        self.browser.close()
        self._pw.stop()

    def load(self, name: str, text: str, how: str) -> dict:
        """Load one workflow ('template' or 'drop'); returns nodes, API prompt, and what the user saw."""
        self.page.evaluate(CLOSE_MESSAGES)
        self.page.wait_for_timeout(300)
        console_before = len(self.console)
        result = self.page.evaluate(LOAD_SCRIPT, [how, name, text])
        result["messages"] = self.page.evaluate(VISIBLE_MESSAGES)
        result["out_of_view"] = self.page.evaluate(NODES_OUT_OF_VIEW)
        result["console"] = self.console[console_before:]
        if self.screenshots is not None:
            self.screenshots.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(self.screenshots / f"{name}-{how}.png"))
        return result

    def template_text(self, name: str) -> str:
        """The workflow exactly as the server's template route serves it to the Templates browser."""
        return self.page.evaluate(
            "async (u) => { const r = await fetch(u); if (!r.ok) throw new Error(u + ': ' + r.status);"
            " return await r.text(); }",
            f"{self.base_url}/api/workflow_templates/{PACK_DIR_NAME}/{name}.json")


def problems_in(result: dict, workflow: dict) -> list[str]:
    """What a user would have been told (validation toasts, missing nodes), plus structural losses."""
    problems = [f"front end said: {m}" for m in result["messages"]]
    if result.get("error"):
        problems.append(f"the front end could not turn the graph into a prompt: {result['error']}")
    problems += [f"console {c}" for c in result["console"]
                 if "zod" in c.lower() or "invalid" in c.lower() or "missing" in c.lower() or "pageerror" in c]
    for node in result.get("out_of_view", []):
        covers = sorted(node["under"].items(), key=lambda item: -item[1])[:3]
        problems.append(f"node {node['id']} ({node['type']}) is not in view at {VIEWPORT[0]}x{VIEWPORT[1]} without "
                        f"panning: {node['hidden']} of {node['points']} points of its box {node['rect']} are hidden "
                        f"(mostly {', '.join(f'{n} under {what}' for what, n in covers)}); move the nodes or change "
                        "the workflow's extra.ds")
    unknown = sorted({n["type"] for n in result["nodes"] if n["known"] is False})
    if unknown:
        problems.append(f"node types unknown to the front end: {unknown}")
    for node in result["nodes"]:
        if node.get("deprecated"):
            problems.append(f"node {node['id']} ({node['type']}) is deprecated in this ComfyUI, shown as "
                            f"{node['title']!r}: use the node that replaced it")
    if len(result["nodes"]) != len(workflow.get("nodes", [])):
        problems.append(f"{len(workflow.get('nodes', []))} nodes in the file, {len(result['nodes'])} on the canvas")
    if result["links"] != len(workflow.get("links", [])):
        problems.append(f"{len(workflow.get('links', []))} links in the file, {result['links']} on the canvas")
    return problems


def check_all(base_url: str, names: list[str], screenshots: Path | None = None) -> dict[str, dict]:
    """{workflow name: {"problems": [...], "prompt": front end's API prompt (template load), "nodes":
    what the canvas holds (template load)}}. On a ComfyUI without Save Audio (Advanced) (before 0.25)
    each workflow is first edited as the README tells its users to (workflow_to_api.for_host)."""
    report = {}
    object_info = _get_json(base_url.rstrip("/") + "/object_info")
    with FrontendSession(base_url, screenshots) as session:
        for name in names:
            workflow = for_host(json.loads(session.template_text(name)), object_info)
            text = json.dumps(workflow)
            problems, prompt, nodes = [], None, None
            for how in ("template", "drop"):
                result = session.load(name, text, how)
                problems += [f"[{how}] {p}" for p in problems_in(result, workflow)]
                if how == "template":
                    prompt, nodes = result["output"], result["nodes"]
            report[name] = {"problems": problems, "prompt": prompt, "nodes": nodes}
    return report


def _get_json(url: str):
    import urllib.request

    with urllib.request.urlopen(url, timeout=120) as resp:
        return json.loads(resp.read())


def _post_json(url: str, payload: dict) -> None:
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30):
        pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running ComfyUI with this pack installed (default: start one from COMFYUI_DIR)")
    parser.add_argument("--screenshots", type=Path, help="folder for one screenshot per loaded workflow")
    args = parser.parse_args(argv)
    reason = browser_missing_reason()
    if reason:
        print(f"cannot check the front end: {reason}")
        return 2
    names = sorted(p.stem for p in (REPO_ROOT / "example_workflows").glob("*.json"))
    if args.url:
        report = check_all(args.url, names, args.screenshots)
    else:
        comfyui = comfyui_dir_from_env()
        if comfyui is None:
            print("set COMFYUI_DIR to a ComfyUI checkout, or give --url")
            return 2
        with tempfile.TemporaryDirectory() as tmp, ComfyServer(comfyui, Path(tmp)) as server:
            report = check_all(server.url, names, args.screenshots)
    failed = 0
    for name, item in report.items():
        status = "OK" if not item["problems"] else "PROBLEMS"
        print(f"{name}: {status}")
        for problem in item["problems"]:
            print(f"  - {problem}")
        failed += bool(item["problems"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
