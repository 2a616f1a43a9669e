"""A run's configuration: the data-set registry, RunConfig, params files, display names."""

from swin_gao_lib.config.run_config import (ACCUMULATION_MODES, IMAGE_HANDLING, LIMITS,
                                            LR_SCALINGS, LR_SCHEDULES, MAX_RUN_NAME,
                                            MAX_SEED, OPTIMIZERS, REDUCTIONS, RUN_NAME,
                                            RunConfig)
from swin_gao_lib.config.checks import (check_run_name, from_yaml, make_config, to_yaml,
                                        unknown_key_error, validate)

__all__ = [
    "ACCUMULATION_MODES",
    "IMAGE_HANDLING",
    "LIMITS",
    "LR_SCALINGS",
    "LR_SCHEDULES",
    "MAX_RUN_NAME",
    "MAX_SEED",
    "OPTIMIZERS",
    "REDUCTIONS",
    "RUN_NAME",
    "RunConfig",
    "check_run_name",
    "from_yaml",
    "make_config",
    "to_yaml",
    "unknown_key_error",
    "validate",
]
