"""One complete run read back: its records and what readers derive from them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swin_gao_lib.config import RunConfig, datasets, labels
from swin_gao_lib.records.layout import LEARNING_RATES


@dataclass
class Run:
    """One complete run's records, and what readers derive from them.

    Records written before a config key existed read as that key's default
    (:attr:`resolved_config`); a measurement they lack reads as NaN.
    """

    name: str
    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    history: Any  # a pandas DataFrame, one row per epoch

    @property
    def resolved_config(self) -> dict[str, Any]:
        """The config with every key: records written before a key existed read as its default."""
        return {**RunConfig().to_dict(), **self.config}

    @property
    def dataset(self) -> str:
        return self.config["dataset"]

    @property
    def dataset_title(self) -> str:
        return datasets.title(self.dataset)

    @property
    def variant(self) -> str:
        """``baseline`` or a label saying how accumulation was done."""
        return labels.variant(self.config)

    def measured(self, key: str) -> Any:
        """A metric of the run, or NaN where its records lack it."""
        return self.metrics.get(key, math.nan)

    @property
    def learning_rates(self) -> Any:
        """``lr.csv`` as a DataFrame, or None for records written before it existed."""
        import pandas as pd

        path = self.path / LEARNING_RATES
        return pd.read_csv(path) if path.is_file() else None

    @property
    def micro_batch_size(self) -> int:
        c = self.resolved_config
        return self.metrics.get("micro_batch_size",
                                math.ceil(c["batch_size"] / c["accumulation_steps"]))

    @property
    def effective_learning_rate(self) -> float:
        return self.metrics.get("effective_learning_rate", self.resolved_config["learning_rate"])

    @property
    def training_time_s(self) -> float:
        """The kit's one training time: the sum of the epochs' steady training wall time
        (compile and validation left out, so resumed and longer runs compare fairly)."""
        if "train_s_steady" in self.history:
            return float(self.history["train_s_steady"].sum())
        return float(self.metrics.get("train_time_s") or math.nan)

    @property
    def time_per_image_ms(self) -> float:
        """Steady training time per training image (median epoch), in ms."""
        n_train = self.metrics.get("samples", {}).get("train")
        per_epoch = self.metrics.get("train_time_per_epoch_s")
        return 1000 * per_epoch / n_train if per_epoch and n_train else math.nan
