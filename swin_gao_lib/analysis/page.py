"""The report on one page: the executed report notebook as one offline HTML file.

Figures are embedded, code is left out, and nothing is fetched when it opens:
the kit's template drops the lab template's CDN blocks (require.js, MathJax,
mermaid.js; the report holds no maths or widgets), and :func:`external_urls`
finds any address the page would still load.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from swin_gao_lib.files import atomic_write_text

#: The kit's nbconvert template: the lab template without what it loads from a CDN.
OFFLINE_TEMPLATE = """\
{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
_TEMPLATE_NAME = "swin-gao-offline.html.j2"


def export_html(notebook: str | Path, target: str | Path | None = None) -> Path:
    """Write the executed ``notebook`` as one self-contained, offline HTML page, without code.

    ``target`` defaults to the notebook's path with ``.html``. The page's
    ``<title>`` names the suite (:func:`page_title`). Raises ``ValueError`` if
    the page would still fetch anything (:func:`external_urls`).
    """
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    notebook = Path(notebook)
    node = nbformat.read(notebook, as_version=4)
    node.metadata["title"] = page_title(node)
    exporter = HTMLExporter(extra_loaders=[DictLoader({_TEMPLATE_NAME: OFFLINE_TEMPLATE})],
                            template_file=_TEMPLATE_NAME, exclude_input=True,
                            exclude_input_prompt=True, exclude_output_prompt=True,
                            embed_images=True)
    body, _ = exporter.from_notebook_node(node, resources={"metadata": {"name": notebook.stem}})
    fetched = external_urls(body)
    if fetched:  # a new nbconvert template block: fail loudly rather than ship an online page
        raise ValueError(f"{notebook.name}: the HTML page would fetch {', '.join(fetched[:3])}")
    return atomic_write_text(Path(target) if target else notebook.with_suffix(".html"), body)


def page_title(notebook) -> str:
    """``swin-gao report: <suite>``, the suite read from the parameters papermill recorded."""
    parameters = notebook.metadata.get("papermill", {}).get("parameters", {})
    suite = parameters.get("suite_dir")
    return f"swin-gao report: {Path(suite).name if suite else 'the bundled example, quick'}"


#: What inline code would load: ``import("https://...")``, ``fetch(...)``, ``x.src = "..."``,
#: or any string naming a remote script or stylesheet (a URL in a comment loads nothing).
_LOADS = (re.compile(r"""(?:import|fetch|importScripts|require)\s*\(\s*\[?\s*['"`]((?:https?:)?//[^'"`]+)"""),
          re.compile(r"""\.(?:src|href)\s*=\s*['"`]((?:https?:)?//[^'"`]+)"""),
          re.compile(r"""['"`]((?:https?:)?//[^'"`\s]+\.(?:m?js|css)(?:\?[^'"`]*)?)['"`]"""))


class _Fetches(HTMLParser):
    """Collects every address a browser would load: scripts, stylesheets, images, CSS urls."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in {"script": ("src",), "link": ("href",), "img": ("src", "srcset"),
                    "iframe": ("src",), "source": ("src", "srcset"), "embed": ("src",),
                    "object": ("data",), "video": ("src", "poster"),
                    "audio": ("src",)}.get(tag, ()):
            value = a.get(key) or ""
            if value and not value.startswith(("data:", "#")):
                self.urls.append(f"<{tag} {key}={value[:80]}>")
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        # what inline code would load: import("https://..."), url(//...), @import
        if self._in == "script":
            self.urls += [f"<script> {u}" for pattern in _LOADS for u in pattern.findall(data)]
        elif self._in == "style":
            self.urls += [f"<style> {m}" for m in re.findall(r"url\(\s*['\"]?((?:https?:)?//[^)'\"]+)", data)]
            self.urls += [f"<style> {m}" for m in
                          re.findall(r"@import\s+(?:url\()?\s*['\"]?([^;'\")\s]+)", data)]


def external_urls(html: str) -> list[str]:
    """Every address outside the page that ``html`` would load when opened (empty: offline)."""
    parser = _Fetches()
    parser.feed(html)
    return list(dict.fromkeys(parser.urls))  # each once, in page order
