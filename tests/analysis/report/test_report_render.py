"""report.html as a reader sees it: rendered in headless Chromium (Debian's `chromium` package), skipped
where it is not installed. Checks the screenshot (the page draws, at the window's size, not blank) and
the page's images: every figure embedded, and the emergence figures laid out as a grid of panels, not a
strip of thumbnails (one row of 6-7 panels, 2366x306 px)."""

import base64
import re
import shutil
import struct
import subprocess

import numpy as np
import pytest
from test_pipeline import SIZES

from sweep.store.runs import Store
from sweep.store.schemas import EVALS, RUNS, to_table

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
METRICS = ("exact_match", "token_accuracy", "edit_similarity", "target_logprob", "task_loss", "token_brier",
           "relative_error")


def png_size(payload: bytes) -> tuple[int, int]:
    assert payload[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", payload[16:24])


def seven_metric_sweep(root) -> Store:
    """A sweep with the default task suite's 7 metrics per task (the shape that was a 2366x306 strip)."""
    store = Store(str(root), "render")
    rng = np.random.default_rng(0)
    for n in SIZES:
        for d in (5e5, 2e6):
            rid = f"N{int(n)}-D{int(d)}"
            loss = (0.8 + 300 / n**0.5 + 2000 / d**0.45) * rng.normal(1, 0.003)
            run = store.run_dir(rid)
            run.write_table("run.parquet", to_table([{"run_id": rid, "status": "done", "n_params": int(n),
                                                      "n_tokens": int(d), "final_val_loss": loss}], RUNS))
            p = float(np.exp(-((n / 2e3) ** -1.0)))
            values = {"exact_match": p**8, "token_accuracy": p, "edit_similarity": 0.3 + 0.7 * p,
                      "target_logprob": np.log(p), "task_loss": -np.log(p), "token_brier": 1 - p,
                      "relative_error": 1 - p}
            run.write_table("evals.parquet", to_table([
                {"run_id": rid, "n_params": int(n), "n_tokens": int(d), "task": "add", "n_samples": 1000,
                 "answer_tokens": 8.0, "metric": m, "value": float(values[m]),
                 "metric_kind": "discontinuous" if m == "exact_match" else "continuous"} for m in METRICS], EVALS))
    return store


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium)")
def test_report_renders_with_figures_as_grids(tmp_path):
    from analysis.loss.run import LossOptions
    from analysis.report.pipeline import analyze_sweep

    store = seven_metric_sweep(tmp_path)
    analyze_sweep(store.uri, options=LossOptions(n_resamples=50, n_workers=1), emergence_boot=50)
    html_path = tmp_path / "render" / "analysis" / "report.html"
    html = html_path.read_text()
    images = {alt: base64.b64decode(data) for alt, data in
              re.findall(r"<img alt='([^']+)' src='data:image/png;base64,([^']+)'>", html)}
    assert len(images) == html.count("<img") and "emergence_add.png" in images
    width, height = png_size(images["emergence_add.png"])
    assert width / height < 2.0, (width, height)  # 7 panels as a 3-wide grid, not a strip
    assert width <= 1600, (width, height)

    shot = tmp_path / "shot.png"
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--screenshot={shot}", "--window-size=1280,4000", html_path.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    assert png_size(shot.read_bytes()) == (1280, 4000)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels[..., :3].std() > 0.05  # text, tables and figures drawn, not a blank page
    # the page fits its window: wide tables scroll inside their box instead of squeezing the reason column
    probe = html_path.with_name("probe.html")
    probe.write_text(html.replace("</body>", "<script>document.title = 'width=' + "
                                  "document.documentElement.scrollWidth;</script></body>"))
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,4000",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    page_width = int(re.search(r"<title>width=(\d+)</title>", dom).group(1))
    assert page_width <= 1280, page_width
    assert ">nan<" not in html
    print(f"\nreport.html: {len(images)} images; emergence_add.png {width}x{height} px; page {page_width} px wide; "
          f"screenshot {shot}")
