"""analysis/tables/grids.py: which grid of a sweep directory an analysis is of, where its files live, and the copy
of the latest grid's analysis that <sweep>/analysis/ holds."""

import json
import subprocess
import sys

import pytest

from analysis.tables.grids import UnknownGrid, grid_ids, open_grid, publish


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def manifest(sweep, grid_id, run_ids, latest=True):
    doc = json.dumps({"name": sweep.name, "grid_id": grid_id, "run_ids": run_ids, "calibration_run_ids": ["c1"]})
    write(sweep / "grids" / grid_id / "sweep.json", doc)
    if latest:
        write(sweep / "sweep.json", doc)


def test_the_latest_grid_is_the_one_sweep_json_names_and_an_older_one_is_kept(tmp_path):
    sweep = tmp_path / "s"
    manifest(sweep, "aaa", ["r1", "r2"])
    manifest(sweep, "bbb", ["r2", "r3"])
    latest, older = open_grid(str(sweep)), open_grid(str(sweep), "aaa")
    assert (latest.grid_id, latest.latest, latest.run_ids) == ("bbb", True, ["r2", "r3"])
    assert (older.grid_id, older.latest, older.run_ids) == ("aaa", False, ["r1", "r2"])
    assert older.home == f"{sweep}/grids/aaa" and older.analysis_dir == f"{sweep}/grids/aaa/analysis"
    assert older.calibration_run_ids == ["c1"] and older.calibration() is None
    write(sweep / "grids" / "aaa" / "calibration.json", '{"run_ids": ["c1"]}')
    assert older.calibration() == {"run_ids": ["c1"]} and latest.calibration() is None
    assert open_grid(str(sweep), "bbb").latest and grid_ids(str(sweep)) == ["aaa", "bbb"]
    with pytest.raises(UnknownGrid, match=r"no grid ccc in .*; its grids: aaa, bbb \(latest\)"):
        open_grid(str(sweep), "ccc")


def test_a_manifest_without_a_grid_id_or_none_at_all_makes_the_sweep_directory_the_grids(tmp_path):
    bare = open_grid(str(tmp_path))
    assert (bare.grid_id, bare.manifest, bare.run_ids, bare.calibration_run_ids) == (None, None, None, [])
    assert bare.home == str(tmp_path) and bare.analysis_dir == f"{tmp_path}/analysis"
    write(tmp_path / "sweep.json", '{"run_ids": ["r1"]}')
    written_by_hand = open_grid(str(tmp_path))
    assert written_by_hand.grid_id is None and written_by_hand.run_ids == ["r1"] and written_by_hand.latest
    with pytest.raises(UnknownGrid, match="it keeps no grids"):
        open_grid(str(tmp_path), "aaa")


def test_publish_copies_the_latest_grids_analysis_record_last_and_removes_anothers_files(tmp_path):
    sweep = tmp_path / "s"
    manifest(sweep, "aaa", ["r1"], latest=False)
    manifest(sweep, "bbb", ["r2"])
    top = sweep / "analysis"
    for name, text in {"report.md": "B", "plots/only_b.png": "b", "inputs.json": "record B"}.items():
        write(sweep / "grids" / "bbb" / "analysis" / name, text)
    for name, text in {"report.md": "A", "plots/only_a.png": "a", "inputs.json": "record A"}.items():
        write(sweep / "grids" / "aaa" / "analysis" / name, text)
        write(top / name, text)  # <sweep>/analysis/ holds the other grid's analysis
    assert not publish(open_grid(str(sweep), "aaa"))  # not the latest: <sweep>/analysis/ is left alone
    assert (top / "inputs.json").read_text() == "record A"
    assert publish(open_grid(str(sweep)))
    assert {p.relative_to(top).as_posix(): p.read_text() for p in top.rglob("*") if p.is_file()} == {
        "report.md": "B", "plots/only_b.png": "b", "inputs.json": "record B"}
    assert not publish(open_grid(str(sweep)))  # already the latest grid's: nothing copied
    (top / "report.md").unlink()
    assert publish(open_grid(str(sweep))) and (top / "report.md").read_text() == "B"  # a file removed by hand


def test_the_check_python_m_sweep_makes_imports_no_polars_scipy_or_matplotlib():
    code = ("import sys, analysis.tables.inputs; "
            "print([m for m in ('polars', 'scipy', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
