"""pyinit: a static PID 1 for Python containers, installed by pip.

The wheel puts the `pyinit` executable into the environment's scripts
directory (a venv's bin/). This package only finds it, for `python -m pyinit`
and for tools that want its path: `pyinit.find_pyinit_bin()`.
"""

from ._find import find_pyinit_bin

__all__ = ["find_pyinit_bin"]
