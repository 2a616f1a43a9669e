"""How the test suite is scheduled on its pytest-xdist workers (``-n 2`` in pyproject.toml).

This file holds scheduling only; the shared fixtures are in ``tests/conftest.py``. It sits
at the repository root so that it applies however the suite is started, ``pytest
notebooks/`` alone included. With ``--dist loadgroup`` it keeps two rules:

* **What must share a worker shares one.** The cells of one notebook (nbval runs them in
  order, in one kernel), and all the tests that use one module- or session-scoped fixture
  of this project (a built wheel, a trained run, a subprocess's results), so that such a
  fixture is built once, not once per worker. Tests that share nothing go out one by one.
* **The longest first.** ``@pytest.mark.slow(seconds)`` gives a test's rough time alone on
  a quiet 2-core machine; whole groups are ordered by their total, longest first, so the
  many quick tests fill the gaps at the end instead of one long test running on its own
  while the other worker idles. The number only orders the tests: nothing is timed or
  asserted with it. ``-m "not slow"`` leaves the slow ones out.

Without xdist (``-n 0`` or ``-p no:xdist``) the tests run one after another in this order.
"""

from __future__ import annotations

import pytest

#: nbval cells have no marks: a notebook's rough time, spread over its cells
#: (train.ipynb trains the default model on 1,000 images).
NOTEBOOK_SECONDS = {"train.ipynb": 60.0, "report.ipynb": 25.0}
_SHARED_SCOPES = ("session", "package", "module", "class")


def _cost(unit: list[pytest.Item]) -> float:
    """The rough seconds of a group: its notebook's, or its tests' ``slow`` marks."""
    if unit[0].path.suffix == ".ipynb":
        return NOTEBOOK_SECONDS.get(unit[0].path.name, 10.0)
    marks = (item.get_closest_marker("slow") for item in unit)
    return sum(float(m.args[0]) if m.args else 10.0 for m in marks if m is not None)


def _shared_keys(item: pytest.Item) -> list[str]:
    """What ``item`` shares with other tests: its notebook, or its higher-scoped fixtures."""
    if item.path.suffix == ".ipynb":
        return [f"notebook:{item.path.name}"]
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    params = getattr(getattr(item, "callspec", None), "params", {})
    keys = []
    for name in info.names_closure:
        for fixturedef in info.name2fixturedefs.get(name, ()):
            # the project's own fixtures only (pytest's tmp_path_factory etc. have no baseid)
            if fixturedef.scope in _SHARED_SCOPES and fixturedef.baseid:
                param = f"[{params[name]}]" if name in params else ""
                keys.append(f"{fixturedef.baseid}::{name}{param}")
    return keys


def _groups(items: list[pytest.Item]) -> dict[pytest.Item, str]:
    """Join the items that share anything (transitively); name each group by one key."""
    parent: dict[str, str] = {}

    def find(k: str) -> str:
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    per_item = {item: _shared_keys(item) for item in items}
    for keys in per_item.values():
        for k in keys[1:]:
            parent[find(k)] = find(keys[0])
    return {item: find(keys[0]) for item, keys in per_item.items() if keys}


class _Scheduling:
    """Two hooks of one name, first and last; a class, since a module cannot hold both."""

    def __init__(self) -> None:
        self.groups: dict[pytest.Item, str] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        # The marks first: xdist's own hook (after this one) makes them its groups.
        self.groups = _groups(items)
        for item, group in self.groups.items():
            item.add_marker(pytest.mark.xdist_group(group.replace("@", "_")))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Whole groups, longest first, each group in its own order (a notebook's cells too).

    Last, after pytest's own reordering, so that it stands; each group stays together,
    so its fixture is set up once without xdist as well.
    """
    groups = _SCHEDULER.groups
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(groups.get(item, item.nodeid), []).append(item)
    ordered = sorted(units.values(), key=lambda unit: -_cost(unit))  # stable
    items[:] = [item for unit in ordered for item in unit]


_SCHEDULER = _Scheduling()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow(seconds): trains, starts kernels or processes, or builds an "
                   "environment; its rough seconds alone on 2 quiet cores (orders the tests)")
    config.pluginmanager.register(_SCHEDULER, "swin-gao-scheduling")
