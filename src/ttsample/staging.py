"""Writing a folder of outputs so that a failure leaves nothing half-written."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def staged_folder(out: Path, *, replace_folder: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``out`` to write into; on success its files land at ``out``.

    If ``out`` does not exist the temporary folder becomes it. If it does, its
    files are replaced one by one (others in it are kept), or with
    ``replace_folder`` the whole folder is. On an exception nothing lands and
    the temporary folder is removed.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        if out.exists() and replace_folder:
            shutil.rmtree(out)
        if not out.exists():
            tmp.rename(out)
            return
        for path in tmp.iterdir():
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
