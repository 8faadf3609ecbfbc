"""--html PATH is checked by every command that takes it before the command does any work: a folder,
a missing folder or a file in place of a folder gets one line with the fix and exit code 2, and no
folder is made on the user's behalf."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lattts.cli import app

runner = CliRunner()
QWEN = Path(__file__).parents[1] / "lattts" / "data" / "curves" / "qwen2.5-math-math100-n8.jsonl"

# each command, and the function its work starts with (replaced so that reaching it fails the test)
COMMANDS = {
    "predict": (["predict", "--budget", "60s", "--device", "h100-sxm"], "lattts.simulator.search.run_prediction"),
    "roofline": (["roofline", "--device", "h100-sxm"], "lattts.simulator.roofline.batch_sweep"),
    "accuracy": (["accuracy", "--traces", str(QWEN)], "lattts.traces.readers.load_traces"),
    "calibrate": (["calibrate", "--device", "cpu", "--quick"], "lattts.cli.calibrate._sweep"),
    "validate": (["validate", "--device", "cpu", "--quick"], "lattts.validate.run.validate"),
}


def no_work(*args, **kwargs):
    raise AssertionError("the command started its work before checking --html")


def bad_paths(tmp: Path) -> dict[str, tuple[Path, str]]:
    (tmp / "a-file").write_text("x")
    return {"a folder": (tmp, "is a folder"),
            "a missing folder": (tmp / "no" / "such" / "x.html", "does not exist"),
            "a file for a folder": (tmp / "a-file" / "x.html", "is a file, not a folder"),
            # `--html out/` reaches the command as `out` (the slash is dropped while parsing)
            "a folder not yet made": (tmp / "out", "not an .html file name")}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", ["a folder", "a missing folder", "a file for a folder", "a folder not yet made"])
def test_a_bad_html_path_is_one_line_before_any_work(command, case, tmp_path, monkeypatch):
    args, work = COMMANDS[command]
    monkeypatch.setattr(work, no_work)
    path, problem = bad_paths(tmp_path)[case]
    res = runner.invoke(app, [*args, "--html", str(path)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "--html" in lines[0] and problem in lines[0], res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "no").exists()  # no folder made on the user's behalf
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing half-written


def test_save_html_writes_whole_files_and_makes_no_folders(tmp_path):
    import plotly.graph_objects as go

    from lattts.report.plots import save_html

    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    out = save_html(fig, tmp_path / "c.html")
    assert out.read_text().rstrip().endswith("</html>")
    assert [p.name for p in tmp_path.iterdir()] == ["c.html"]  # the temporary file was renamed, not left
    with pytest.raises(FileNotFoundError):
        save_html(fig, tmp_path / "missing" / "c.html")
    assert not (tmp_path / "missing").exists()


def test_written_files_get_the_usual_permissions(tmp_path):
    # mkstemp makes 0600 files; a chart or profile the user asked for is readable like any file they write
    import os
    import stat

    from lattts.paths import write_atomic

    mask = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "chart.html", "<html></html>")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert not list(tmp_path.glob(".chart.html.*"))  # no temporary file left behind
