"""Find the pyinit binary that pip installed with this package (as ruff does)."""

import os
import sys
import sysconfig


def _candidates():
    """The scripts directories pip may have installed the binary into."""
    exe = "pyinit" + (sysconfig.get_config_var("EXE") or "")
    dirs = [sysconfig.get_path("scripts")]
    # `pip install --user`: the user scheme's scripts directory.
    user_scheme = {
        "posix": "posix_user",
        "nt": "nt_user",
    }.get(os.name)
    if user_scheme and user_scheme in sysconfig.get_scheme_names():
        dirs.append(sysconfig.get_path("scripts", scheme=user_scheme))
    # `pip install --target DIR` / `--prefix DIR`: DIR/bin next to the package.
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirs.append(os.path.join(pkg_root, "bin"))
    dirs.append(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(pkg_root))), "bin"))
    for d in dirs:
        if d:
            yield os.path.join(d, exe)


def find_pyinit_bin():
    """Return the path of the installed pyinit binary.

    Raises FileNotFoundError naming every place looked at.
    """
    looked = []
    for path in _candidates():
        if path in looked:
            continue
        looked.append(path)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(
        "pyinit: the pyinit binary is not installed next to this Python package; "
        "looked at: " + ", ".join(looked) + " (reinstall the wheel: pip install pyinit-*.whl)"
    )


if __name__ == "__main__":  # pragma: no cover
    print(find_pyinit_bin(), file=sys.stdout)
