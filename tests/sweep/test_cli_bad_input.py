"""Bad input, before launch, every time: each case runs the real command line (`python -m sweep ...` or
`python -m analysis ...`) and must exit 2 within seconds, with the offending key (or file) on the
first `error:` line, no traceback, and nothing launched or written.

Cases that touch a cluster, the analysis cases and a sample of the config cases run as subprocesses
(a fresh interpreter each, a few at a time: the process's own exit status, and a traceback would show
in its output); the other config cases call sweep.cli.main(argv), the function `python -m sweep`
exits with, in this process (what they test stops before Ray is imported, and it saves ~1.5 s of
interpreter start-up per case). The table "case | exit | first line" is written to the terminal at
the end of the module (pytest -s not needed).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from sweep.driver.cluster import local_gpu_count


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    key: str  # must appear on the first `error:` line
    also: tuple[str, ...] = ()  # further text of that line (the suggested fix)
    program: str = "sweep"
    files: dict[str, bytes | str] = field(default_factory=dict)  # written under the case's directory first
    own_results_dir: bool = False  # the case sets results_dir itself
    max_seconds: float = 60.0
    subprocess: bool = False  # run as `python -m ...` even when main(argv) in this process would do

    @property
    def in_process(self) -> bool:
        touches_cluster = any(a.startswith(("cluster", "+cluster")) for a in self.args)
        return self.program == "sweep" and not self.subprocess and not touches_cluster


def corpus(path: str, *more: str) -> tuple[str, ...]:
    return ("data=corpus", f"data.corpus.path={{dir}}/{path}", *more)


TEXT = "the quick brown fox jumps over the lazy dog\n" * 200
NO_GPU = local_gpu_count() == 0

CASES = [
    # impossible shapes and sizes
    Case("n_layer 0", ("grid.models=[{n_layer: 0, d_model: 64}]",), "grid.models[0].n_layer", ("must be >= 1",)),
    Case("n_head does not divide d_model", ("grid.models=[{n_layer: 2, d_model: 64, n_head: 3}]",),
         "grid.models[0].n_head", ("does not divide",)),
    Case("odd RoPE head dimension", ("grid.models=[{n_layer: 1, d_model: 40, n_head: 8}]",), "grid.models[0]",
         ("RoPE",)),
    Case("n_nonembed_params below the smallest shape", ("grid.models=[{n_nonembed_params: 1}]",),
         "grid.models[0].n_nonembed_params", ("no shape",)),
    Case("n_nonembed_params beyond any machine", ("grid.models=[{n_nonembed_params: 1e30}]",),
         "grid.models[0].n_nonembed_params", ("beyond",)),
    Case("n_nonembed_params NaN", ("grid.models=[{n_nonembed_params: nan}]",), "grid.models[0].n_nonembed_params",
         ("finite",), subprocess=True),
    Case("a size by its old key n_params", ("grid.models=[{n_params: 1e6}]",), "grid.models[0].n_params",
         ("renamed", "did you mean grid.models[0].n_nonembed_params?")),
    Case("seq_len too short", ("model.seq_len=4",), "model.seq_len", (">= 8",)),
    # budgets, ratios, seeds
    Case("zero token budget", ("grid.n_tokens=[0]",), "grid.n_tokens[0]", ("positive",)),
    Case("negative token budget", ("grid.n_tokens=[-1e6]",), "grid.n_tokens[0]", ("positive",)),
    Case("NaN token budget", ("grid.n_tokens=[nan]",), "grid.n_tokens[0]", ("finite",)),
    Case("no budget at all", ("grid.n_tokens=[]",), "grid.n_tokens", ("no token budget",)),
    Case("zero tokens per param", ("grid.n_tokens=[]", "grid.tokens_per_param=[0]"), "grid.tokens_per_param[0]",
         ("positive",)),
    Case("negative tokens per param", ("grid.n_tokens=[]", "grid.tokens_per_param=[-20]"),
         "grid.tokens_per_param[0]", ("positive",)),
    Case("empty seed list", ("grid.seeds=[]",), "grid.seeds", ("empty",)),
    Case("WSD branch budgets within one step", ("train.schedule=wsd", "grid.branches=true",
                                                "grid.n_tokens=[2e4,2.01e4]"),
         "grid.n_tokens", ("budgets 20000 and 20100 tokens of", "round up to", "set them at least one step")),
    # learning rates and other floats
    Case("negative lr", ("train.lr=-1e-3",), "train.lr", ("positive",)),
    Case("NaN lr", ("train.lr=nan",), "train.lr", ("finite",), subprocess=True),
    Case("infinite lr", ("train.lr=inf",), "train.lr", ("finite",)),
    Case("NaN lr_scale", ("train.lr_scale=nan",), "train.lr_scale", ("finite",)),
    Case("NaN weight decay", ("train.weight_decay=nan",), "train.weight_decay", ("finite",)),
    Case("infinite grad clip", ("train.grad_clip=inf",), "train.grad_clip", ("finite",)),
    Case("heldout fraction 1", ("data.heldout_fraction=1",), "data.heldout_fraction", ("(0, 1)",)),
    # typos in enumerated names
    Case("schedule typo", ("train.schedule=cosin",), "train.schedule", ("did you mean cosine?",), subprocess=True),
    Case("precision typo", ("train.precision=bf61",), "train.precision", ("did you mean bf16?",)),
    Case("positions typo", ("model.positions=rotary",), "model.positions", ("did you mean rope?",)),
    Case("cluster.kind typo", ("cluster.kind=rey",), "cluster.kind", ("did you mean ray?",)),
    Case("cluster.device gpu", ("cluster.device=gpu",), "cluster.device", ("did you mean cuda?",)),
    Case("logger.mode typo", ("logger.mode=ofline",), "logger.mode", ("did you mean offline?",)),
    Case("logger.kind typo", ("logger.kind=wandbb",), "logger.kind", ("did you mean wandb?",)),
    Case("corpus format typo", corpus("c.txt", "data.corpus.format=parket"), "data.corpus.format",
         ("did you mean parquet?",), files={"c.txt": TEXT}),
    Case("corpus dtype typo", corpus("c.bin", "data.corpus.dtype=unit16"), "data.corpus.dtype",
         ("did you mean uint16?",), files={"c.bin": np.arange(4000, dtype=np.uint16).astype(np.uint8).tobytes()}),
    # tasks
    Case("task kind that does not exist", ("tasks.suite=[{name: t, kind: additon, args: {digits: 2}}]",),
         "tasks.suite[0]", ("unknown task kind 'additon'", "did you mean addition?")),
    Case("task argument of the wrong type", ("tasks.suite=[{name: t, kind: addition, args: {digits: two}}]",),
         "tasks.suite[0]", ("digits must be an int",)),
    Case("task argument misspelt", ("tasks.suite=[{name: t, kind: addition, args: {digit: 2}}]",),
         "tasks.suite[0]", ("did you mean digits?",)),
    Case("zero eval problems", ("tasks.n_eval=0",), "tasks.n_eval", (">= 1",)),
    # corpus files
    Case("corpus file missing", corpus("nope.txt"), "data.corpus.path", ("does not exist",)),
    Case("corpus text file empty", corpus("empty.txt"), "data.corpus.path", ("empty.txt is empty",),
         files={"empty.txt": ""}),
    Case("uint16 .bin of odd length", corpus("odd.bin"), "data.corpus.dtype", ("odd.bin has 4001 bytes",),
         files={"odd.bin": b"\x01" * 4001}),
    Case(".bin ids outside the vocabulary", corpus("wide.bin"), "data.tokenizer", ("outside the tokenizer",),
         files={"wide.bin": np.arange(4000, dtype=np.uint16).tobytes()}),
    Case("folder with no files", corpus("books"), "data.corpus.path", ("holds no files",),
         files={"books/.hidden": "x"}),
    Case("folder with no text files", corpus("books"), "data.corpus.format", ("NUL bytes",),
         files={"books/cover.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50}),
    Case("corpus shorter than one row", corpus("short.txt"), "data.corpus.path", ("shorter than one row",),
         files={"short.txt": "hello\n" * 10}),
    Case("tokenizer file missing", ("data.tokenizer={dir}/tokenizer.json",), "data.tokenizer",
         ("neither 'byte' nor an existing",)),
    # where results go
    Case("results_dir under a file", ("results_dir={dir}/afile/res",), "results_dir", ("is a file",),
         files={"afile": "not a directory"}, own_results_dir=True),
    Case("results_dir not writable", ("results_dir=/proc/sweep-results",), "results_dir",
         ("cannot create /proc/sweep-results",), own_results_dir=True),
    Case("results_dir URI nobody serves", ("results_dir=nosuchfs://bucket/sweeps",), "results_dir",
         ("cannot open",), own_results_dir=True),
    Case("relative results_dir on a Ray cluster", ("cluster=ray", "cluster.address=127.0.0.1:1", "results_dir=res"),
         "results_dir", ("is relative, and cluster=ray runs on other nodes", "/res on shared storage"),
         own_results_dir=True),
    Case("sweep name with a slash", ("name=a/b",), "name", ("names a directory",)),
    # the cluster
    Case("unreachable cluster address", ("cluster=ray", "cluster.address=127.0.0.1:1"), "cluster.address",
         ("nothing answers at 127.0.0.1:1",), max_seconds=30.0),
    Case("unreachable cluster, dry run", ("cluster=ray", "cluster.address=127.0.0.1:1", "dry_run=true"),
         "cluster.address", ("nothing answers",), max_seconds=30.0),
    Case("more CPUs per run than any node", ("cluster.cpus_per_run=4096",), "cluster.cpus_per_run",
         ("the largest node has",)),
    Case("more GPUs per run than the cluster", ("cluster.gpus_per_run=64", "train.batch_size=64"),
         "cluster.gpus_per_run", ("data parallel on 64 GPUs",)),
    Case("data-parallel split of a derived batch", ("cluster.gpus_per_run=4",), "cluster.gpus_per_run",
         ("cannot split batches",)),
    Case("micro-batch not dividing the derived batch", ("train.micro_batch_size=3",), "train.micro_batch_size",
         ("does not divide",)),
    *([Case("GPU shares on a machine without CUDA", ("cluster.num_gpus=1",), "cluster.num_gpus",
            ("no CUDA GPU",))] if NO_GPU else []),
    # keys that do not exist, values of the wrong type, options that do not exist
    Case("unknown key added with +", ("+grid.n_token=[1e4]",), "grid.n_token", ("did you mean grid.n_tokens?",),
         subprocess=True),
    Case("unknown key", ("train.learning_rate=1e-3",), "train.learning_rate", ("did you mean train.lr?",)),
    Case("value of the wrong type", ("train.batch_size=many",), "train.batch_size", ("'many'",), subprocess=True),
    Case("group option that does not exist", ("grid=tinny",), "grid", ("no option 'tinny'", "did you mean tiny?")),
    Case("unparsable override", ("grid.models=[{n_layer: 2",), "grid.models", ("cannot parse",)),
    # the analysis
    Case("analysis of a directory that does not exist", ("{dir}/no/such/dir",), "no such sweep directory",
         program="analysis"),
    Case("fit-loss on a missing column", ("fit-loss", "{dir}/t.csv", "--n", "params", "--d", "D", "--loss", "L"),
         "column 'params'", program="analysis", files={"t.csv": "N,D,L\n1e6,1e8,3.0\n"}),
    Case("fit-loss with N <= 0 in every row",
         ("fit-loss", "{dir}/t.csv", "--n", "N", "--d", "D", "--loss", "L", "--bootstrap", "0"),
         "column 'N' (--n)", ("<= 0",), program="analysis",
         files={"t.csv": "N,D,L\n" + "".join(f"-{10**k},1e9,{3 - 0.1 * k}\n" for k in range(3, 10))}),
    Case("emergence with NaN in every value", ("emergence", "{dir}/e.csv"), "column 'value'", ("NaN",),
         program="analysis",
         files={"e.csv": "task,metric,n_params,value\n" + "".join(f"t,em,{10**k},nan\n" for k in range(5, 10))}),
]


@dataclass
class Outcome:
    returncode: int | None  # None: killed, still running after 2 x max_seconds
    output: str
    seconds: float
    case_dir: Path

    @property
    def first_error(self) -> str:
        return next((line for line in self.output.splitlines() if line.startswith("error:")), "")


def _prepare(case: Case, root: Path) -> tuple[Path, list[str]]:
    case_dir = root / "".join(c if c.isalnum() else "_" for c in case.name)
    case_dir.mkdir(parents=True)
    for name, content in case.files.items():
        path = case_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    args = [a.replace("{dir}", str(case_dir)) for a in case.args]
    if case.program == "sweep":
        args = ["grid=tiny", "logger=none", *args]
        if not case.own_results_dir:
            args.append(f"results_dir={case_dir}/res")
    return case_dir, args


def _run_subprocess(case: Case, root: Path) -> Outcome:
    """The command as a user types it; one that hangs is killed after 2 x max_seconds (recorded, exit None)."""
    case_dir, args = _prepare(case, root)
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", case.program, *args], capture_output=True, text=True,
                              cwd=case_dir, timeout=2 * case.max_seconds)
    except subprocess.TimeoutExpired as exc:
        output = "".join(b.decode() if isinstance(b, bytes) else (b or "") for b in (exc.stdout, exc.stderr))
        return Outcome(None, f"{output}\n[killed after {exc.timeout:g} s]", time.perf_counter() - started, case_dir)
    return Outcome(done.returncode, done.stdout + done.stderr, time.perf_counter() - started, case_dir)


def _run_in_process(case: Case, root: Path) -> Outcome:
    """sweep.cli.main(argv) with this case's directory as the working directory; an exception escaping
    main() is what the process would print as a traceback (exit status 1)."""
    from sweep.cli import main

    case_dir, args = _prepare(case, root)
    buffer, cwd = io.StringIO(), os.getcwd()
    started = time.perf_counter()
    try:
        os.chdir(case_dir)
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            code = main(args)
    except Exception:
        code = 1
        buffer.write(traceback.format_exc())
    finally:
        os.chdir(cwd)
    return Outcome(code, buffer.getvalue(), time.perf_counter() - started, case_dir)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, request) -> dict[str, Outcome]:
    root = tmp_path_factory.mktemp("bad_input")
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = {c.name: pool.submit(_run_subprocess, c, root) for c in CASES if not c.in_process}
        results = {c.name: _run_in_process(c, root) for c in CASES if c.in_process}  # meanwhile, here
        results.update({name: future.result() for name, future in pending.items()})
    yield results
    lines = ["", "bad input table: case | exit status | first line of the message",
             "| case | exit | first line |", "|---|---|---|"]
    for case in CASES:
        out = results[case.name]
        first = out.first_error or (out.output.strip().splitlines() or [""])[0]
        lines.append(f"| {case.name} | {out.returncode} | {first.replace('|', '/')} |")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print("\n".join(lines), flush=True)


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_exits_2_naming_the_key_before_anything_starts(case, outcomes):
    out = outcomes[case.name]
    assert out.returncode == 2, out.output
    assert "Traceback" not in out.output, out.output
    assert case.key in out.first_error, out.output
    for text in case.also:
        assert text in out.first_error, out.output
    assert out.seconds < case.max_seconds, f"took {out.seconds:.1f} s"
    if case.program == "sweep":
        assert "nothing was launched" in out.output
        assert "Ray up" not in out.output and "W&B:" not in out.output  # no run was started
        assert not (out.case_dir / "res").exists() and not (out.case_dir / "results").exists()
        assert not (out.case_dir / "afile").is_dir()
