"""azure-gpu-stacks toolkit: catalog, offline engine, policy runner, reports and CLI."""
