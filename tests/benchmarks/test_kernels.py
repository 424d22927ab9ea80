"""The kernel benchmarks (conv2d, attention) time every framework interleaved, and run end
to end on the CPU at their small sizes."""

import pytest

from benchmarks import attention, conv
from benchmarks._timing import interleaved


def test_interleaved_times_every_framework_in_turn():
    calls = []
    steps = {n: (lambda n=n: calls.append(n), lambda: calls.append("sync")) for n in "ab"}
    got = interleaved(steps, iters=2, repeats=3, warmup=1)
    assert sorted(got) == ["a", "b"] and all(t >= 0 for t in got.values())
    assert calls == ["a", "sync", "b", "sync"] + ["a", "a", "sync", "b", "b", "sync"] * 3


@pytest.mark.parametrize("bench", [conv, attention], ids=["conv", "attention"])
def test_rows_on_cpu(bench, capsys):
    pytest.importorskip("mlx.core")
    bench.main(["--device", "cpu", "--dtypes", "float32", "--iters", "1", "--repeats", "1"])
    rows = [r.split("|")[1:-1] for r in capsys.readouterr().out.splitlines()
            if r.startswith("| small")]
    assert len(rows) == len(bench.SMALL)
    for r in rows:  # ember ms, torch ms, ratio ... and upstream's f+b ms
        assert float(r[2]) > 0 and float(r[3]) > 0 and float(r[8]) > 0
