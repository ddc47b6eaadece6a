"""`gpustack plan` as it ran before the out-of-process engine: the CLI's baseline.

Same command line as `gpustack`; the program runs inside the CLI's interpreter under
`pulumi.runtime.set_mocks`, with the SDKs' type-only aliases and the garbage collector left on,
as the engine did before (`run_plan(..., in_process=True, optimize=False)`).
"""

from __future__ import annotations

import functools
import sys

from gpustack import cli, engine

if __name__ == "__main__":
    cli.run_plan = functools.partial(engine.run_plan, in_process=True, optimize=False)  # type: ignore[assignment]
    sys.exit(cli.main())
