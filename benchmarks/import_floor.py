"""A fresh interpreter that only loads the SDK classes a plan registers, then exits.

`python -m benchmarks.import_floor module:Member ...` imports each module (the package that
exports the class, as a program does: `from pulumi_azure_native import network`), reads the
class, and exits without teardown, as the exec shim does. Its time is what any run of the
program in a process of its own pays before the program does anything else: the floor under
`gpustack plan`'s out-of-process path, and under `pulumi up`.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys


def main(specs: list[str]) -> None:
    """Load every `module:Member` in `specs`; exit 0 (never returns)."""
    gc.disable()  # as in the program's process (gpustack/hosts/python_exec.py)
    for spec in specs:
        module_name, _, member = spec.partition(":")
        getattr(importlib.import_module(module_name), member)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
