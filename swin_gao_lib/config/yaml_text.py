"""The one loader of every YAML text the kit reads (params files, ``--set`` values, a run's
``config.yaml``, ``study-design.yaml``): strict and bounded.

* a key given twice is refused (PyYAML lets the last one win);
* the size is bounded as the values will be used, aliases expanded (a "billion
  laughs" is 500 bytes of text): each alias counts its anchor's nodes and characters
  again, and composing stops past :data:`MAX_NODES` or :data:`MAX_CHARS`;
* nesting is bounded (:data:`MAX_DEPTH`; PyYAML composes recursively);
* an alias may not point into the collection that holds it (a recursive value).
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from swin_gao_lib.config.paths import check_path, what_is
from swin_gao_lib.errors import ConfigError, shown, shown_path

#: The most YAML nodes one text may hold once its aliases are expanded.
MAX_NODES = 100_000
#: The most characters of text, and of scalars once aliases are expanded.
MAX_CHARS = 1_000_000
#: The deepest nesting of lists and mappings.
MAX_DEPTH = 32


class TooLarge(yaml.MarkedYAMLError):
    """YAML refused for its size or shape, not its syntax."""


class BoundedLoader(yaml.SafeLoader):
    """A ``SafeLoader`` that counts what it composes, aliases expanded, and refuses repeated
    keys."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = self._nodes = self._chars = 0
        self._sizes: dict[int, tuple[int, int]] = {}  # id(anchored node) -> (nodes, characters)

    def _count(self, nodes: int, chars: int, mark: Any, alias: str | None = None) -> None:
        self._nodes += nodes
        self._chars += chars
        if self._nodes > MAX_NODES or self._chars > MAX_CHARS:
            what = (f"{MAX_NODES:,} values" if self._nodes > MAX_NODES
                    else f"{MAX_CHARS:,} characters")
            problem = (f"aliases expand the YAML past {what} (*{shown(alias, quote=False)} here): "
                       "refused before anything is built; write the values out" if alias else
                       f"the YAML holds more than {what}; a params file needs a few hundred")
            raise TooLarge(None, None, problem, mark)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None:  # an undefined alias: PyYAML's own error below
                size = self._sizes.get(id(node))
                if size is None:
                    raise TooLarge(None, None, f"the alias *{shown(event.anchor, quote=False)} "
                                   "points into the collection that holds it (a recursive "
                                   "value); write the values out", event.start_mark)
                self._count(*size, event.start_mark, alias=event.anchor)
            return super().compose_node(parent, index)
        event = self.peek_event()
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise TooLarge(None, None, f"values nested more than {MAX_DEPTH} levels deep; "
                           "a params file needs a few", event.start_mark)
        before = (self._nodes, self._chars)
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._count(1, len(node.value) if isinstance(node, yaml.ScalarNode) else 0,
                    event.start_mark)
        if getattr(event, "anchor", None) is not None:
            self._sizes[id(node)] = (self._nodes - before[0], self._chars - before[1])
        return node


def _integer(loader: BoundedLoader, node: yaml.ScalarNode) -> int:
    try:
        return loader.construct_yaml_int(node)
    except ValueError:  # past Python's 4,300 digits for int(str): a typo, not a number
        raise yaml.constructor.ConstructorError(
            None, None, f"an integer of {len(node.value):,} digits; no setting takes one",
            node.start_mark) from None


def _no_duplicates(loader: BoundedLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # a merge key (<<: *base): its keys may be overridden here, as YAML says
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (list, dict)):
            continue  # unhashable: the config checks reject it later
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {shown(key)} is given twice (lines {seen[key]} and {line}); "
                "keep one", key_node.start_mark)
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


BoundedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)
BoundedLoader.add_constructor("tag:yaml.org,2002:int", _integer)


def yaml_error(where: str, exc: yaml.YAMLError) -> ConfigError:
    """A YAML error as one line: ``where:line:column: problem``."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    place = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return ConfigError(f"{place}: {'' if isinstance(exc, TooLarge) else 'not valid YAML: '}"
                       f"{problem}")


def read_yaml(text: str, where: str) -> Any:
    """Parse YAML text strictly and within bounds; errors are one line naming ``where``."""
    if len(text) > MAX_CHARS:
        raise ConfigError(f"{where}: holds {len(text):,} characters, more than the "
                          f"{MAX_CHARS:,} a YAML file of the kit may hold")
    try:
        return yaml.load(text, Loader=BoundedLoader)
    except yaml.YAMLError as exc:
        raise yaml_error(where, exc) from None


def read_text_file(path: str | os.PathLike, what: str, folder_hint: str = "") -> str:
    """The UTF-8 text of a small file the kit reads (a params file, a run's ``config.yaml``).

    Refuses, in one line naming ``what`` and the path, anything but a regular file
    (a FIFO is never opened), a file over :data:`MAX_CHARS` bytes, text not UTF-8.
    """
    named = f"{what} {shown_path(path)}"
    check_path(os.fspath(path), what, "file")
    kind = what_is(path)
    if kind == "folder":
        raise ConfigError(f"{named} is a folder; give one YAML file{folder_hint}")
    if kind != "file":
        raise ConfigError(f"{named} {kind}")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CHARS + 1)
    except OSError as exc:
        raise ConfigError(f"{named} cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_CHARS:
        raise ConfigError(f"{named} holds more than {MAX_CHARS:,} bytes; a YAML file of the kit "
                          "holds a few thousand")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{named} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                          f"{exc.start}); save it as UTF-8") from None


def read_yaml_file(path: str | os.PathLike, what: str, folder_hint: str = "") -> Any:
    """A YAML file read through :func:`read_text_file` and parsed by :func:`read_yaml`."""
    text = read_text_file(path, what, folder_hint)
    return read_yaml(text, f"{what} {shown_path(path)}")
