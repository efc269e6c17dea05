"""Figure files are byte-stable and well formed (spec/07_RUNS_RECORDS_LOGGING.md Determinism, §4b
Phase 5).

Byte identity is checked across two separate Python processes that differ in hash seed,
time zone, start time and a hostile user matplotlibrc; PNG size, metadata chunks, PDF
info, the embedded font and the raster box's pixels are read back from the files.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.image import imread

from canon import CANON
from critspec import figures
from critspec.figures.render import figure_style
from critspec.paths import project_root
from critspec.spec.load import project_spec
from tests import figure_tables as ft

ROOT = project_root()
# The user config a run B must ignore: every key here would change pixels or PDF bytes.
HOSTILE_RC = """\
font.family: serif
font.size: 15
lines.linewidth: 4
axes.prop_cycle: cycler('color', ['k', 'm'])
figure.dpi: 37
figure.facecolor: yellow
savefig.dpi: 300
savefig.bbox: tight
pdf.fonttype: 3
"""
SCRIPT = """\
import sys
from pathlib import Path
import matplotlib
from tests.figure_tables import RATES, SPIKE_DEF_IDS, write_all
print(matplotlib.rcParams["lines.linewidth"])
write_all(Path(sys.argv[1]), SPIKE_DEF_IDS[:1], RATES[:1])
"""
# tab:red, the box colour, as 0..1 RGB.
BOX_RGB = np.array([0xD6, 0x27, 0x28]) / 255


def _start(out: Path, hash_seed: str, tz: str, rc: Path | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "MATPLOTLIBRC"}
    # This checkout's src/ first: the child must draw with this tree's code, whichever
    # tree the venv was installed from.
    path = os.pathsep.join((str(ROOT / "src"), str(ROOT)))
    env |= {"PYTHONHASHSEED": hash_seed, "TZ": tz, "PYTHONPATH": path}
    if rc is not None:
        env["MATPLOTLIBRC"] = str(rc)
    out.mkdir()
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _sha256s(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def test_png_and_pdf_byte_identical_across_processes(tmp_path):
    rc = tmp_path / "matplotlibrc"
    rc.write_text(HOSTILE_RC)
    a = _start(tmp_path / "a", "1", "UTC", None)
    time.sleep(1.5)  # B writes its files at a later wall-clock second than A
    b = _start(tmp_path / "b", "4242", "Pacific/Kiritimati", rc)
    results = [p.communicate(timeout=120) for p in (a, b)]
    for proc, (_, err) in zip((a, b), results, strict=True):
        assert proc.returncode == 0, err
    # B really ran under the hostile rc (and A under matplotlib's default linewidth)
    assert [float(out.split()[0]) for out, _ in results] == [1.5, 4.0]
    # write_all draws Phase 5's figures (the replication overlay has its own test)
    phase5 = project_spec().phases.by_key("PHASE5_ANALYZE")
    artifacts = project_spec().artifacts.artifacts
    pairs = [artifacts[c].basename for c in phase5.produces if c.startswith("fig_")]
    expected = sorted(name for pair in pairs for name in pair)
    sha_a, sha_b = _sha256s(tmp_path / "a"), _sha256s(tmp_path / "b")
    assert sorted(sha_a) == expected
    assert sha_a == sha_b


def _png_chunk_types(data: bytes) -> list[bytes]:
    """Chunk types of a PNG, walked by hand from the file format (length, type, data, crc)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    types, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        types.append(data[i + 4 : i + 8])
        i += 12 + length
    return types


def test_png_size_metadata_and_pdf_info(tmp_path):
    summary = ft.summary_table()  # 2 spike definitions x 2 rates: a 2 x 2 panel grid
    fig = figures.b_curves(summary)
    png, pdf = tmp_path / "b.png", tmp_path / "b.pdf"
    figures.save_figure(fig, png, pdf)
    image = imread(png)
    # 2 panels of 2.7 in high and 2 of 3.6 in wide at 100 dpi
    assert image.shape == (540, 720, 4)
    assert np.isfinite(image).all() and image[..., :3].std() > 0
    types = _png_chunk_types(png.read_bytes())
    assert types[0] == b"IHDR" and types[-1] == b"IEND"
    assert not {b"tEXt", b"iTXt", b"zTXt", b"tIME"} & set(types)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert b"CreationDate" not in data and b"ModDate" not in data
    name = CANON.PROJECT.NAME.encode()
    assert b"/Creator (" + name + b")" in data and b"/Producer (" + name + b")" in data
    assert b"Matplotlib" not in data
    assert b"DejaVuSans" in data  # the bundled font, embedded (TrueType, fonttype 42)


def test_font_is_the_bundled_dejavu_sans():
    bundled = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    with figure_style():
        fig = figures.chi_over_g(ft.summary_table())
        fig.canvas.draw()
        label = fig.axes[0].get_xticklabels()[0]
        found = font_manager.findfont(label.get_fontproperties(), fallback_to_default=False)
    assert Path(found).resolve() == bundled.resolve()


def test_raster_box_pixels_at_the_given_cells(tmp_path):
    A, box = ft.raster_seq()
    l_min, l_max, t_min, t_max = box
    fig = figures.raster_example(A, box, "sequence 0")
    png = tmp_path / "r.png"
    figures.save_figure(fig, png, tmp_path / "r.pdf")
    image = imread(png)[..., :3]
    assert image.shape[:2] == (270, 720)  # one panel high, two wide, at 100 dpi
    red = np.abs(image - BOX_RGB).max(axis=-1) < 0.1
    with figure_style():
        fig.canvas.draw()
        ax = next(ax for ax in fig.axes if ax.get_title() == "sequence 0")
        # The legend's own box sample is red too: leave the legend out.
        [legend] = [lg.get_window_extent() for lg in fig.legends]
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    in_legend = (xs >= legend.x0) & (xs <= legend.x1)
    in_legend &= (image.shape[0] - ys >= legend.y0) & (image.shape[0] - ys <= legend.y1)
    rows, cols = np.nonzero(red & ~in_legend)
    with figure_style():
        (x0, y0), (x1, y1) = ax.transData.transform(
            [(t_min - 0.5, l_min - 0.5), (t_max + 0.5, l_max + 0.5)]
        )
    height = image.shape[0]
    tol = 2.0  # the edge is 1.25 pt wide (1.7 px) and antialiased
    assert abs(cols.min() - x0) <= tol and abs(cols.max() - x1) <= tol
    # image rows count down from the top, display y up from the bottom
    assert abs((height - rows.max()) - y0) <= tol and abs((height - rows.min()) - y1) <= tol
    # independent of the transform: the box spans 7 of 24 token cells horizontally
    x_left, x_right = ax.transData.transform([(-0.5, 0), (A.shape[1] - 0.5, 0)])[:, 0]
    cell = (x_right - x_left) / A.shape[1]
    assert abs((cols.max() - cols.min()) - (t_max - t_min + 1) * cell) <= 2 * tol
