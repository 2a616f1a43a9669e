"""Grids in params files: expansion, names, seeds, and errors for bad grids."""

from pathlib import Path

import pytest
import yaml

from swin_gao_lib.config.params import expand, load_config, varied_keys
from swin_gao_lib.errors import ConfigError

DOC_EXAMPLE = {
    "dataset": "mnist",
    "seeds": [0, 1],
    "grid": [
        {"accumulation_steps": [1, 4]},
        {"accumulation_steps": [4], "batch_size": [512], "lr_scaling": ["none", "linear"]},
    ],
}


def write(tmp_path: Path, name: str, values: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def names(points):
    return [p.name for p in points]


def test_blocks_are_joined_and_every_name_carries_every_varied_key():
    points = expand(DOC_EXAMPLE, "mnist")
    assert len(points) == (2 + 2) * 2
    assert names(points)[:4] == ["mnist-n1-b128-lrnone-s0", "mnist-n4-b128-lrnone-s0",
                                 "mnist-n4-b512-lrnone-s0", "mnist-n4-b512-lrlinear-s0"]
    assert names(points)[4:] == [n.replace("-s0", "-s1") for n in names(points)[:4]]
    assert [p.seed_rank for p in points] == [0] * 4 + [1] * 4
    # each point sets every varied key, so it selects one run of the file on its own
    assert points[0].overrides == {"accumulation_steps": 1, "batch_size": 128,
                                   "lr_scaling": "none", "seed": 0}
    assert varied_keys(DOC_EXAMPLE) == ["accumulation_steps", "batch_size", "lr_scaling", "seed"]


@pytest.mark.parametrize("values,stem,expected", [
    ({"seeds": [3, 1, 2], "run_name": "rep"}, "file-stem", ["rep-s3", "rep-s1", "rep-s2"]),
    ({"dataset": "mnist"}, "mnist-baseline", ["mnist-baseline"]),  # no grid: one run
    ({"grid": {"learning_rate": [1e-3, 0.0003], "augment": [True, False]}}, "x",
     ["x-lr0.001-augmenttrue", "x-lr0.001-augmentfalse", "x-lr0.0003-augmenttrue",
      "x-lr0.0003-augmentfalse"]),
    # f"{1e6:g}" is "1e+06": '+' is no run-name character
    ({"grid": {"learning_rate": [1.0e+6, 1.0e-7]}}, "lr", ["lr-lr1e_06", "lr-lr1e-07"]),
])
def test_names_of_seeds_plain_files_and_values(values, stem, expected, tmp_path):
    points = expand(values, stem)
    assert names(points) == expected
    if "seeds" in values:
        assert [p.overrides for p in points] == [{"seed": s} for s in values["seeds"]]
    else:  # each name is a valid run name, and the point loads under it
        path = write(tmp_path, stem, values)
        assert [load_config(path, p.overrides).run_name for p in points] == expected


def test_a_mapping_is_a_cartesian_product():
    values = {"grid": {"optimizer": ["adamw", "sgd"], "accumulation_steps": [1, 2, 4],
                       "depths": [[2], [2, 2]]}, "num_heads": [4]}
    points = expand(values, "p")
    assert len(points) == 2 * 3 * 2 == len(set(names(points)))
    assert "p-sgd-n4-depths2x2" in names(points)
    assert {p.overrides["optimizer"] for p in points} == {"adamw", "sgd"}


BAD_GRIDS = [
    ({"grid": {"batch_szie": [64]}}, r"grid: unknown config key 'batch_szie'; did you mean 'batch_size'"),
    ({"grid": [{"epochs": [1]}, {"optimiser": ["sgd"]}]},
     r"grid block 2: unknown config key 'optimiser'; did you mean 'optimizer'"),
    ({"grid": {"batch_size": []}}, r"grid: batch_size has an empty list of values"),
    ({"grid": {"batch_size": 64}}, r"grid: batch_size must be a list of values, e\.g\. batch_size: \[64\]"),
    ({"grid": {}}, r"grid: expected a non-empty mapping"),
    ({"grid": []}, r"grid: expected a mapping of key: \[values...\] or a non-empty list"),
    ({"grid": "batch_size"}, r"grid: expected a mapping"),
    ({"grid": [{"epochs": [1]}, "oops"]}, r"grid block 2: expected a non-empty mapping"),
    ({"grid": {"seed": [0, 1]}}, r"'seed' cannot be varied in a grid; list the seeds under 'seeds:'"),
    ({"grid": {"run_name": ["a"]}}, r"'run_name' cannot be varied"),
    ({"seeds": []}, r"seeds: expected a non-empty list of integers"),
    ({"seeds": 3}, r"seeds: expected a non-empty list"),
    ({"seeds": [0, -1]}, r"seeds: every seed must be an integer in \[0, 2\^32 - 1\], got -1"),
    ({"seeds": [0, "1"]}, r"seeds: every seed must be an integer"),
    ({"seeds": [1, 1]}, r"seeds: \[1, 1\] repeats a seed"),
    ({"seeds": [0], "seed": 4}, r"sets both 'seed' and 'seeds'"),
    ({"grid": [{"accumulation_steps": [1, 2]}, {"accumulation_steps": [2]}]},
     r"grid block 2 gives the run 'x-n2' already made by block 1"),
    ({"grid": {"accumulation_steps": [2, 2]}}, r"grid block 1 gives the run 'x-n2' twice"),
]


@pytest.mark.parametrize("values,message", BAD_GRIDS, ids=[m[:40] for _, m in BAD_GRIDS])
def test_bad_grids_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        expand(values, "x")


def test_load_config_of_a_grid_file_asks_for_a_point(tmp_path):
    path = write(tmp_path, "study", DOC_EXAMPLE)
    with pytest.raises(ConfigError, match=r"is a grid of 8 runs varying accumulation_steps, "
                       r"batch_size, lr_scaling, seed; run them all with `swin-gao run-all"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"pick one by setting lr_scaling, seed"):
        load_config(path, ["accumulation_steps=4", "batch_size=512"])


def test_load_config_of_a_grid_point_matches_its_expansion(tmp_path):
    path = write(tmp_path, "study", DOC_EXAMPLE)
    for point in expand(DOC_EXAMPLE, "study"):
        cfg = load_config(path, point.overrides)
        assert cfg.run_name == point.name
        for key, value in point.overrides.items():
            assert getattr(cfg, key) == value
        assert cfg.dataset == "mnist"


def test_run_all_plan_expands_grids_validates_first_and_goes_seed_by_seed(tmp_path):
    from swin_gao_lib.runs.runner import plan_suite

    a = write(tmp_path, "a", {"dataset": "mnist", "seeds": [0, 1],
                              "grid": {"accumulation_steps": [1, 2]}})
    b = write(tmp_path, "b", {"dataset": "mnist"})
    plans = plan_suite([a, b], tmp_path / "out")
    assert [p.run_dir.name for p in plans] == ["a-n1-s0", "a-n2-s0", "b", "a-n1-s1", "a-n2-s1"]
    assert all(p.run_dir.parent == tmp_path / "out" for p in plans)

    bad = write(tmp_path, "c", {"dataset": "mnist", "grid": {"window_size": [2, 3]}})
    with pytest.raises(ConfigError, match=r"c.yaml: window_size: 3 does not divide"):
        plan_suite([a, b, bad], tmp_path / "out")


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("suite", ["examples", "paper", "quick", "study", "study-quick"])
def test_every_shipped_params_file_plans(suite, tmp_path):
    from swin_gao_lib.runs.runner import plan_suite

    files = sorted((REPO / "params" / suite).glob("*.yaml"))
    assert files
    plans = plan_suite(files, tmp_path)
    assert len({p.run_dir.name for p in plans}) == len(plans)
    if suite.startswith("study"):
        # MNIST: 3 (paper) + 5 (SGD) + 3 (momentum) + 3 (updates) configurations x 10 seeds;
        # CIFAR-10: 2 x 10 (paper) + 1 x 10 (controls)
        assert len(plans) == 140 + 20 + 10


def test_study_quick_has_the_design_of_the_full_study():
    """The same files, grids and seeds; only the scale (rates, epoch counts) may differ."""
    from swin_gao_lib.config.params import read_params

    def design(grid):
        return [{k: v for k, v in block.items() if k not in ("learning_rate", "epochs")}
                for block in grid]

    names = sorted(p.name for p in (REPO / "params" / "study").glob("*.yaml"))
    assert names == sorted(p.name for p in (REPO / "params" / "study-quick").glob("*.yaml"))
    for name in names:
        a = read_params(REPO / "params" / "study" / name)
        b = read_params(REPO / "params" / "study-quick" / name)
        assert design(a["grid"]) == design(b["grid"]) and a["seeds"] == b["seeds"]
        assert a["dataset"] == b["dataset"]
        assert a["batch_size"] == b["batch_size"] and a["lr_base_batch"] == b["lr_base_batch"]
        # the same comparisons, whatever the scale's epochs
        assert design([c["arm"] for c in a["study"]["comparisons"]]) == \
               design([c["arm"] for c in b["study"]["comparisons"]])
