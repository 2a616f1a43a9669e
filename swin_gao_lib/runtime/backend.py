"""The Keras backend of a run: TensorFlow (the paper's, the default) or JAX.

Keras reads ``KERAS_BACKEND`` once, when first imported, so :func:`use_backend`
sets it before that import (and afterwards only checks it). Nothing here
imports Keras or a backend at import time; the run-time questions (version,
GPUs) import only the backend asked about.
"""

from __future__ import annotations

import os
import sys

from swin_gao_lib.errors import ConfigError

#: The Keras backends the kit runs on; the first is the default.
BACKENDS = ("tensorflow", "jax")
DEFAULT_BACKEND = BACKENDS[0]
#: The environment variable Keras reads when it is first imported.
ENV_VAR = "KERAS_BACKEND"


def resolve_backend(requested: str | None = None) -> str:
    """The backend a run uses: ``requested``, else ``$KERAS_BACKEND``, else TensorFlow.

    Raises:
        ConfigError: the name is not one of :data:`BACKENDS`.
    """
    if requested:
        name, field = requested, "backend"
    else:
        name, field = os.environ.get(ENV_VAR) or DEFAULT_BACKEND, ENV_VAR
    if name not in BACKENDS:
        raise ConfigError(f"{field}: '{name}' is not one of {', '.join(BACKENDS)}; "
                          f"set {'backend' if field == 'backend' else ENV_VAR} to one of them")
    return name


def active_backend() -> str | None:
    """The backend of the Keras imported in this process, or None if Keras is not imported."""
    keras = sys.modules.get("keras")
    if keras is None or not hasattr(keras, "backend"):
        return None
    return keras.backend.backend()


def use_backend(requested: str | None = None) -> str:
    """Make ``requested`` (resolved by :func:`resolve_backend`) Keras's backend in this process.

    Child processes (notebook kernels, benchmark workers) inherit the choice.

    Raises:
        ConfigError: Keras is already imported with another backend.
    """
    name = resolve_backend(requested)
    active = active_backend()
    if active is not None and active != name:
        raise ConfigError(
            f"backend: Keras is already running on '{active}' in this process, so '{name}' "
            "cannot be applied; choose the backend before Keras is imported (restart the "
            f"kernel or process, or start it with {ENV_VAR}={name})")
    os.environ[ENV_VAR] = name
    return name


def backend_version(name: str) -> str:
    """The version of backend ``name`` (imports it)."""
    if name == "jax":
        import jax

        return jax.__version__
    import tensorflow as tf

    return tf.__version__


def gpu_names(name: str | None = None) -> list[str]:
    """Names of the GPUs backend ``name`` (default: the active one) sees."""
    name = name or active_backend() or resolve_backend()
    if name == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    import tensorflow as tf

    names = []
    for dev in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(dev)
        names.append(details.get("device_name", dev.name))
    return names
