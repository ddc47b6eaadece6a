"""Load generated Pulumi provider SDKs with their annotations deferred (PEP 563), compiled once.

Most of what a program's process spends before its first resource is importing provider SDKs:
`from pulumi_azure_native import network` runs every module of the package, and each builds
input classes, output classes and TypedDicts whose annotations (`Optional[pulumi.Input[
Sequence[pulumi.Input['SubnetArgs']]]]`, thousands of them) `typing` evaluates eagerly. The SDK
itself only reads those annotations through `typing.get_type_hints` with the class's module
globals (`pulumi._types._raw_return_hints`, `_types_from_annotations`), i.e. lazily and only for
the classes a program actually registers; so compiling the generated modules as if they began
with `from __future__ import annotations` keeps what the SDK sees and skips the rest (prod
stack: the program's imports 1.3 s -> 0.8 s, identical plan).

Only generated provider SDKs are loaded this way: top-level `pulumi_*` packages holding the
codegen's `_utilities.py`; the core `pulumi` package, the program's own modules and everything
else load as usual. The compiled code is cached in gpustack's cache directory (not the
package's `__pycache__`, which may be read-only or switched off with PYTHONDONTWRITEBYTECODE),
keyed by source path and interpreter version and checked against the source's size and mtime;
a module with no usable cache entry that cannot be cached is loaded as usual. The first plan
after installing or upgrading an SDK compiles the modules it imports (some seconds for
azure-native), later plans reuse them.

This file runs inside the program's interpreter (`python_exec.py` loads it by path), so it
imports nothing from gpustack and keeps to Python 3.8 syntax.
"""

from __future__ import annotations
import __future__

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import marshal
import os
import struct
import sys
from typing import Any

_DEFERRED = __future__.annotations.compiler_flag
_FORMAT = b"gpustack-sdk-pep563-1\x00"


class DeferredAnnotationsLoader(importlib.machinery.SourceFileLoader):
    """A source loader that compiles with deferred annotations and caches the result."""

    def __init__(self, fullname: str, path: str, cache_dir: str) -> None:
        super().__init__(fullname, path)
        self.cache_dir = cache_dir

    def get_code(self, fullname: str) -> Any:
        source_path = self.get_filename(fullname)
        try:
            stat = os.stat(source_path)
        except OSError:
            return super().get_code(fullname)
        header = (
            _FORMAT
            + importlib.util.MAGIC_NUMBER
            + struct.pack("<QQ", stat.st_mtime_ns, stat.st_size)
        )
        # One entry per source file and interpreter version: programs on different Pythons
        # sharing an SDK path (a virtualenv rebuilt on another Python) keep their own.
        key = importlib.util.MAGIC_NUMBER + os.path.abspath(source_path).encode()
        digest = hashlib.sha256(key).hexdigest()[:40]
        cached = os.path.join(self.cache_dir, digest[:2], digest + ".pyc")
        try:
            with open(cached, "rb") as handle:
                data = handle.read()
            if data.startswith(header):
                return marshal.loads(data[len(header) :])
        except (OSError, ValueError, EOFError, TypeError):
            pass  # missing, stale or damaged: compile again
        if not _writable(os.path.dirname(cached)):
            return super().get_code(fullname)
        code = compile(
            self.get_data(source_path), source_path, "exec", flags=_DEFERRED, dont_inherit=True
        )
        temporary = f"{cached}.{os.getpid()}.tmp"
        try:
            with open(temporary, "wb") as handle:
                handle.write(header + marshal.dumps(code))
            os.replace(temporary, cached)  # atomic: concurrent plans never read half a file
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        return code


def _writable(directory: str) -> bool:
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK)


class GeneratedSdkFinder:
    """Finds generated provider SDK modules and hands them to `DeferredAnnotationsLoader`."""

    def __init__(self, cache_dir: str) -> None:
        self.cache_dir = cache_dir
        self._generated: dict[str, bool] = {}

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        top = fullname.partition(".")[0]
        if not top.startswith("pulumi_"):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return spec
        if not self._is_generated(top, spec):
            return spec
        spec.loader = DeferredAnnotationsLoader(fullname, spec.origin, self.cache_dir)
        return spec

    def _is_generated(self, top: str, spec: Any) -> bool:
        known = self._generated.get(top)
        if known is None:
            # The top package's own spec when it is being imported, else its loaded module.
            if spec.name == top:
                locations = list(spec.submodule_search_locations or [])
            else:
                locations = list(getattr(sys.modules.get(top), "__path__", None) or [])
            known = any(
                os.path.isfile(os.path.join(location, "_utilities.py")) for location in locations
            )
            self._generated[top] = known
        return known


def install(cache_dir: str) -> GeneratedSdkFinder:
    """Put a `GeneratedSdkFinder` caching into `cache_dir` first on `sys.meta_path`."""
    finder = GeneratedSdkFinder(cache_dir)
    sys.meta_path.insert(0, finder)
    return finder
