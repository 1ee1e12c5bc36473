"""The configuration reference, generated from the config itself: a MkDocs hook (mkdocs.yml
``hooks:``) that replaces ``<!-- settings -->`` and ``<!-- java-settings -->`` in a page with
tables built from :class:`ProducerConfig`'s fields (name, type, default, Java name, the field's
``#:`` comment) and from the table of Java's settings (what is not supported, and why).

A field added to ``ProducerConfig`` with a ``#:`` comment appears with no other step
(tests/unit/test_docs_reference.py fails on a field without one). ``python
tools/docs_reference.py`` prints the tables.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def field_comments() -> dict[str, str]:
    """Each field's ``#:`` comment ("" for a field without one: a test fails on it)."""
    from aioproducer import config

    source = Path(inspect.getfile(config)).read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ProducerConfig")
    out: dict[str, str] = {}
    for node in cls.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        comment: list[str] = []
        i = node.lineno - 2
        while i >= 0 and lines[i].strip().startswith("#:"):
            comment.insert(0, lines[i].strip()[2:].strip())
            i -= 1
        out[node.target.id] = " ".join(comment)
    return out


def _default(f: Any) -> str:
    if f.default is not MISSING:
        value = f.default
    elif f.default_factory is not MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    if value == ():
        return "`()`"
    return f"`{value!r}`"


def _cell(text: str) -> str:
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)  # Sphinx roles: code in Markdown
    return text.replace("|", "\\|").replace("\n", " ")


def settings_table() -> str:
    from aioproducer import config
    from aioproducer._java_settings import java_name

    comments = field_comments()
    rows = [
        "| Setting | Type | Default | Java name | What it does |",
        "|---|---|---|---|---|",
    ]
    for f in fields(config.ProducerConfig):
        java = java_name(f.name)
        rows.append(
            f"| `{f.name}` | `{_cell(str(f.type))}` | {_cell(_default(f))} | "
            f"{f'`{java}`' if java else '—'} | {_cell(comments.get(f.name, ''))} |"
        )
    return "\n".join(rows)


def java_table() -> str:
    from aioproducer._java_settings import JAVA_SETTINGS, status

    rows = ["| Java setting | Here | Status | Note |", "|---|---|---|---|"]
    for s in sorted(JAVA_SETTINGS, key=lambda s: (status(s), s.java)):
        st = status(s)
        note = s.not_applicable if st == "not applicable" else ""
        note = "; ".join(x for x in (note, s.note or "") if x)
        rows.append(f"| `{s.java}` | `{s.python}` | {st} | {_cell(note)} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """The MkDocs hook."""
    if "<!-- settings -->" in markdown:
        markdown = markdown.replace("<!-- settings -->", settings_table())
    if "<!-- java-settings -->" in markdown:
        markdown = markdown.replace("<!-- java-settings -->", java_table())
    return markdown


if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if __name__ == "__main__":
    print(settings_table())
    print()
    print(java_table())
