"""`python -m pyinit ARGS...`: replace this Python process with pyinit.

exec, not a subprocess: pyinit takes over this process's pid (PID 1 in a
container), its signals and its exit status, and no Python stays behind.
"""

import os
import sys

from ._find import find_pyinit_bin


def main():
    try:
        path = find_pyinit_bin()
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 127
    os.execv(path, [path, *sys.argv[1:]])
    return 127  # not reached: execv only returns by raising


if __name__ == "__main__":
    sys.exit(main())
