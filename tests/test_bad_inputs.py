"""Every command refuses broken and hostile inputs (the corpus of ``tests/bad_inputs.py``): non-zero
exit, no traceback, at most three lines naming the file or key, no partial output, and no pickle
payload run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import bad_inputs  # the corpus script beside this file


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bad_inputs")
    base = bad_inputs.make_base(root / "base")
    return root, bad_inputs.make_cases(base, root)


def _run_case(case, capsys) -> int:
    from posebridge import cli

    try:
        return cli.main(case.argv)
    except SystemExit as exit_:  # argparse's usage errors
        return int(exit_.code or 0)


def _problems(case, code: int, err: str, marker: Path) -> list[str]:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    found = []
    if code == 0:
        found.append("exit 0")
    if "Traceback" in err:
        found.append("traceback")
    if len(lines) > 3 or not lines:
        found.append(f"{len(lines)} lines")
    if case.named not in err:
        found.append(f"does not name {case.named!r}")
    found += [f"left {p}" for p in case.outputs if p.exists()]
    if marker.exists():
        found.append("PAYLOAD RAN")
        marker.unlink()
    return found


def test_the_corpus_is_large_and_every_case_fails_cleanly(corpus, capsys):
    root, cases = corpus
    assert len(cases) >= 100
    assert len({c.id for c in cases}) == len(cases)
    failures = []
    for case in cases:
        capsys.readouterr()
        shutil.rmtree(root / "out", ignore_errors=True)  # each case starts without outputs
        try:
            code = _run_case(case, capsys)
        except Exception as err:  # an escaped exception is a traceback for the user
            failures.append(f"{case.id}: raised {type(err).__name__}: {str(err)[:200]}")
            continue
        err = capsys.readouterr().err
        problems = _problems(case, code, err, root / bad_inputs.MARKER_NAME)
        if problems:
            failures.append(f"{case.id}: {', '.join(problems)} | {err.strip()[:300]}")
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures)
