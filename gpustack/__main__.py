"""`python -m gpustack`: the `gpustack` console script."""

from gpustack.console import run

if __name__ == "__main__":
    run()
