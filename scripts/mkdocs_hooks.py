"""MkDocs hook (mkdocs.yml `hooks:`): docstrings use Sphinx roles (:class:`~zerocopy.X`);
the API pages show them as the plain name in code, as Sphinx would."""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|exc|data):<code>~?([\w.]+)</code>")


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub(lambda m: f"<code>{m.group(1).rsplit('.', 1)[-1]}</code>", html)
