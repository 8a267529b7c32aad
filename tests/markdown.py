"""GitHub's Markdown parser (cmark-gfm) as the tests' reader: what a reviewer would see of the
text the app writes."""

from __future__ import annotations

import cmarkgfm
from cmarkgfm.cmark import Options


def render(markdown: str) -> str:
    """HTML as GitHub's parser makes it, before GitHub's sanitizer: raw HTML is kept."""
    page: str = cmarkgfm.github_flavored_markdown_to_html(
        markdown, options=Options.CMARK_OPT_UNSAFE
    )
    return page
