"""Console scripts that use the provider outside a DAG (``[project.scripts]`` in pyproject)."""
