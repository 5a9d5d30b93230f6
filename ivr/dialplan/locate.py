"""Where each key of a dialplan was written: ``menus.root`` -> file, line and column.

The frozen :class:`~ivr.dialplan.model.Dialplan` keeps no positions (it is swapped and
shared while calls run); checks made after loading, such as ``hotline-ivr validate``'s,
read them from here to name the file and line of what they find.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from ivr.dialplan._yaml import Mark, YList, YMap, YNode, parse_yaml

__all__ = ["Mark", "dialplan_files", "key_marks"]


def dialplan_files(paths: Sequence[Path]) -> tuple[Path, ...]:
    """The files a list of paths means, as the loader reads them: a folder gives its ``*.yaml``."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.glob("*.yaml")))
        elif path.is_file():
            files.append(path)
    return tuple(files)


def key_marks(paths: Sequence[Path]) -> Mapping[str, Mark]:
    """Every key path in the files (``menus.root.keys.1``) -> where its key was written.

    A key path found in two files keeps its first place; unreadable files are skipped
    (the loader reports them).
    """
    marks: dict[str, Mark] = {}
    for file in dialplan_files(paths):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        root, _ = parse_yaml(text, str(file))
        if root is not None:
            _walk(root, "", marks)
    return MappingProxyType(marks)


def _walk(node: YNode, path: str, marks: dict[str, Mark]) -> None:
    if isinstance(node, YMap):
        for key, value in node.items:
            key_path = f"{path}.{key.value}" if path else key.value
            marks.setdefault(key_path, key.mark)
            _walk(value, key_path, marks)
    elif isinstance(node, YList):
        for index, item in enumerate(node.items):
            key_path = f"{path}.{index}" if path else str(index)
            marks.setdefault(key_path, item.mark)
            _walk(item, key_path, marks)
