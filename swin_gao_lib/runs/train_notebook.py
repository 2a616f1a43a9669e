"""The train notebook's parameters resolved to one run: what a hand-run trains, and when it stops.

``notebooks/train.ipynb`` run by hand says which run it makes with
``params_file``, ``demo``, ``overrides``, ``output_dir`` and ``run_name``;
lowest first: the params file, or else the ``demo`` values (never both); then
``overrides``, key by key; then ``output_dir`` and ``run_name`` (None: the
params file's name, or :data:`DEMO_RUN_NAME`). Unless ``overwrite``, a complete
run in the folder stops a hand-run before anything is written. ``run-all``
passes ``config_yaml`` instead, a resolved config used as it is.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from swin_gao_lib.config import RunConfig, from_yaml
from swin_gao_lib.config.params import load_config, read_yaml
from swin_gao_lib.errors import ConfigError
from swin_gao_lib.records.folder import RunFolder

#: The run's name when the notebook runs its demo values (no params file, no run_name).
DEMO_RUN_NAME = "notebook-demo"


class CompleteRunExists(ConfigError):
    """A hand-run of the notebook found a complete run where its own would land."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this list instead of the traceback: the message names the folder and
        # the fix; the frames of the notebook's cell and of this module would only bury it
        return [f"{type(self).__name__}: {self}"]


def config_keys(value: Any, field: str) -> dict[str, Any]:
    """A parameter holding config keys, as a dict.

    ``value`` is a mapping, None (no keys), or its YAML (or JSON) text:
    ``papermill -p overrides '{"epochs": 1}'`` passes the text, not a dict.

    Raises:
        ConfigError: anything else, in one line naming ``field``.
    """
    if isinstance(value, str):
        value = read_yaml(value, field)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{field}: expected a mapping of config keys, e.g. {{\"epochs\": 1}} "
                          f"(papermill: -y '{field}: {{epochs: 1}}'), got {value!r}")
    return dict(value)


def notebook_values(params_file: str | os.PathLike | None, demo: Any, overrides: Any,
                    output_dir: str | os.PathLike | None, run_name: str | None) -> dict[str, Any]:
    """The keys the notebook sets on top of ``params_file`` (module docstring: precedence)."""
    values = config_keys(demo, "demo") if not params_file else {}
    values.update(config_keys(overrides, "overrides"))
    if output_dir is not None:
        values["output_dir"] = str(output_dir)
    if run_name:
        values["run_name"] = run_name
    elif not params_file:
        values.setdefault("run_name", DEMO_RUN_NAME)  # an overrides' run_name still wins
    return values


def notebook_config(*, params_file: str | os.PathLike | None = None, demo: Any = None,
                    overrides: Any = None, output_dir: str | os.PathLike | None = None,
                    run_name: str | None = None, overwrite: bool = False,
                    config_yaml: str | None = None) -> RunConfig:
    """The run the train notebook makes from its parameters, validated (module docstring).

    Raises:
        ConfigError: a bad parameter or config value (one line naming it), or
            :class:`CompleteRunExists` (unless ``overwrite``).
    """
    if config_yaml is not None:  # resolved by run-all when it planned the suite: as it is
        return from_yaml(config_yaml, "config_yaml")
    values = notebook_values(params_file, demo, overrides, output_dir, run_name)
    cfg = load_config(params_file or None, values)
    if not overwrite and RunFolder.of(cfg).complete:  # stop before anything is written
        raise CompleteRunExists(
            f"output: {RunFolder.of(cfg).path} already holds a complete run; set overwrite = "
            "True to replace it, or choose another run_name")
    return cfg
