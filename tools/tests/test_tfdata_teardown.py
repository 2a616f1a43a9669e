"""benchmarks/tfdata_teardown.py --scan: the wait at the end of fit, read off records by hand numbers."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("tfdata_teardown",
                                              ROOT / "benchmarks" / "tfdata_teardown.py")
teardown = importlib.util.module_from_spec(spec)
spec.loader.exec_module(teardown)


def _record(folder: Path, name: str, fit: float, epochs: float, resumed: int = 0) -> None:
    (folder / name).mkdir(parents=True)
    (folder / name / "metrics.json").write_text(json.dumps(
        {"fit_wall_s": fit, "total_time_s": epochs, "resumed": resumed}))


def test_scan_counts_the_long_fits_and_their_waits(tmp_path):
    _record(tmp_path, "a", 200.0, 150.0)        # long, waited 50 s
    _record(tmp_path, "b", 120.0, 119.0)        # long, waited 1 s (not > 5)
    _record(tmp_path, "c", 60.0, 20.0)          # short: left out of the long ones
    _record(tmp_path, "d", 300.0, 100.0, 1)     # resumed: its fit is not one process's
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5}))
    text = teardown.scan(tmp_path)
    assert text == (f"{tmp_path}: 3 complete runs never resumed, 2 with fit > 90 s; 1 of those "
                    "waited > 5 s after their last epoch (up to 50 s); the waits sum to 51 s of "
                    "320 s of fit")
