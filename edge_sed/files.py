"""Files written whole or not at all.

Each file goes to a hidden ``.<name>.part`` beside its place and is moved in only
once every file of the set is complete, so that a full disk or a folder standing
where a file goes leaves the previous files as they were, and no partial one.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["replaced_whole"]


@contextlib.contextmanager
def replaced_whole(*paths: Path) -> Iterator[tuple[Path, ...]]:
    """The hidden partial paths beside *paths*, to write in the ``with`` block.

    When the block ends without an error, each is moved over its path (none is,
    if a folder stands where any goes: :class:`IsADirectoryError` names it). The
    partial files are removed whatever happens.
    """
    partials = tuple(path.with_name(f".{path.name}.part") for path in paths)
    try:
        yield partials
        for path in paths:
            if path.is_dir():
                raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        for partial, path in zip(partials, paths):
            os.replace(partial, path)
    finally:
        for partial in partials:
            partial.unlink(missing_ok=True)
