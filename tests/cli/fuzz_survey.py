"""Count what the CLI fuzz test finds, by kind, over many invocations (not a test).

    python -m tests.cli.fuzz_survey 3000 [SEED]

The fuzz test stops at the first problem; this runs every invocation and prints how many
showed each kind of problem, with one command line for each. The same SEED draws the same
command lines (as long as the commands' options are the same).
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.cli.fuzz_runs import prepare, problems, run
from tests.cli.fuzzing import Invocation, invocations


def kind(problem: str) -> str:
    """A problem without the details that vary between invocations.

    A traceback is known by its exception and where the project raised it or let it pass.
    """
    if problem.startswith("traceback: "):
        name, _, rest = problem.removeprefix("traceback: ").partition(": ")
        return f"traceback: {name}{rest[rest.rfind(' at ') :] if ' at ' in rest else ''}"
    return re.sub(r"\d+", "N", problem)[:100]


def survey(count: int, random_seed: int) -> None:
    """Run ``count`` invocations drawn from ``random_seed``; print the problems, by kind."""
    prepared = prepare(Path(tempfile.mkdtemp(prefix="fuzz-survey-")))
    kinds: Counter[str] = Counter()
    examples: dict[str, str] = {}
    runs = {"invocations": 0, "with problems": 0}
    started = time.monotonic()

    @seed(random_seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(invocation=invocations())
    def sample(invocation: Invocation) -> None:
        found = problems(invocation, run(invocation, prepared))
        runs["invocations"] += 1
        runs["with problems"] += bool(found)
        for problem in found:
            kinds[kind(problem)] += 1
            examples.setdefault(kind(problem), str(invocation))

    sample()
    elapsed = time.monotonic() - started
    summary = f"{runs['invocations']} invocations in {elapsed:.0f} s"
    print(f"{summary}; {runs['with problems']} with problems")  # noqa: T201
    for name, number in kinds.most_common():
        print(f"{number:5}  {name}\n       e.g. {examples[name][:300]}")  # noqa: T201


if __name__ == "__main__":
    survey(
        int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 11,
    )
