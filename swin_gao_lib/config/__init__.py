"""A run's configuration: the data-set registry, RunConfig, params files, display names."""

from swin_gao_lib.config.run_config import MAX_RUN_NAME, MAX_SEED, RunConfig
from swin_gao_lib.config.checks import from_yaml, make_config, to_yaml, unknown_key_error

__all__ = ["MAX_RUN_NAME", "MAX_SEED", "RunConfig", "from_yaml", "make_config", "to_yaml",
           "unknown_key_error"]
