"""Refresh the example files shown in the docs: ``python docs/sync_examples.py``.

A doc shows a file of an example package with a marker line and a fenced block::

    <!-- example-file: docs/examples/promptopt-example-selector/pyproject.toml -->
    ```toml
    ...
    ```

This script replaces each such block's body with the file's current text;
``tests/test_docs_examples.py`` fails when a block and its file differ.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILE_BLOCK = re.compile(
    r"(?P<head><!-- example-file: (?P<path>\S+) -->\n+```[\w-]*\n)(?P<body>.*?)(?P<tail>```)",
    re.DOTALL,
)


def sync(doc: Path) -> bool:
    """Rewrite the file blocks of ``doc``; True if anything changed."""
    text = doc.read_text()
    new = FILE_BLOCK.sub(lambda m: m["head"] + (REPO / m["path"]).read_text() + m["tail"], text)
    if new != text:
        doc.write_text(new)
    return new != text


if __name__ == "__main__":
    for doc in sorted((REPO / "docs").glob("*.md")):
        if sync(doc):
            print(f"updated {doc.relative_to(REPO)}")
