"""Make ``import tensorflow`` fail as if it were not installed: ``block()`` in this process,
``python tests/no_tensorflow.py SCRIPT ARGS...`` for a script."""

import importlib.abc
import runpy
import sys


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named '{name}' (blocked by the test)",
                                      name=name)
        return None


def block() -> None:
    """From now on, importing TensorFlow fails as if it were not installed."""
    if "tensorflow" in sys.modules:
        raise RuntimeError("tensorflow is already imported")
    sys.meta_path.insert(0, _Blocker())


if __name__ == "__main__":
    block()
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
