"""The docs page of each rule (docs/rules/<rule-id>.md), written from the rule itself.

Run ``python -m umbau.lint.docs docs/rules`` after changing a rule; a test fails while
a page and its rule disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from umbau.lint.model import Rule
from umbau.lint.registry import all_rules


def render_page(rule: Rule) -> str:
    """Markdown: the problem, the lock and what it blocks, the safe rewrite."""
    switch = (f"Opt-in: enable it with `enable = [\"{rule.id}\"]` under `[tool.umbau.lint]`."
              if rule.opt_in else
              f"On by default; switch it off with `disable = [\"{rule.id}\"]` under "
              "`[tool.umbau.lint]`.")
    return f"""# {rule.id}

{rule.title[0].upper() + rule.title[1:]}. Default severity: **{rule.severity}**. {switch}

## Problem

{rule.problem}

## Lock taken and what it blocks

- **Lock:** {rule.lock}
- **Blocks:** {rule.blocks}
- **Table:** {rule.effect}

## Safe rewrite

```python
{rule.safe}
```

## Suppressing

When it is safe here (a tiny table, a maintenance window), say why next to the call:

```python
# umbau: ignore[{rule.id}] <why this is safe here>
```

An ignore without a reason suppresses nothing (`ignore-needs-reason`), and an ignore that
suppresses nothing is reported (`unused-ignore`). See [umbau lint](../commands/lint.md).
"""


def write_pages(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for rule in all_rules().values():
        path = folder / f"{rule.id}.md"
        path.write_text(render_page(rule), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for page in write_pages(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/rules")):
        print(page)
