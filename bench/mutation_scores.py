"""The mutation score per module after `mutmut run` (docs/mutation.md).

Reads mutmut's results in ``mutants/`` and prints, per mutated module, how many mutants
were killed (a test failed, or the run timed out) out of all, and the survivors by name
(`mutmut show NAME` prints the change). Run from the repository root:

    python bench/mutation_scores.py
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

# mutmut's exit codes: 1 a test failed (killed), 0 every test passed (survived),
# 33 no test reaches the mutant, -24 and 36 timed out (killed), 34 skipped.
KILLED = {1, -24, 36}
SURVIVED = {0}
UNTESTED = {33}


def main(root: Path) -> int:
    metas = sorted((root / "mutants" / "src").rglob("*.py.meta"))
    if not metas:
        print("no results: run `mutmut run --max-children 2` first", file=sys.stderr)
        return 1
    print(f"{'module':<34} {'killed':>7} {'survived':>9} {'no test':>8} {'total':>6} {'score':>7}")
    survivors: list[str] = []
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        count = Counter(codes.values())
        killed = sum(count[c] for c in KILLED)
        total = len(codes)
        module = str(meta.relative_to(root / "mutants")).removesuffix(".meta")
        score = f"{100 * killed / total:.1f}%" if total else "-"
        print(
            f"{module:<34} {killed:>7} {sum(count[c] for c in SURVIVED):>9} "
            f"{sum(count[c] for c in UNTESTED):>8} {total:>6} {score:>7}"
        )
        survivors += sorted(name for name, code in codes.items() if code not in KILLED)
    if survivors:
        print("\nnot killed (survived, untested or not run):")
        print("\n".join(f"  {name}" for name in survivors))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(__file__).resolve().parent.parent))
