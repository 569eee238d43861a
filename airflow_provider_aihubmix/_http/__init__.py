"""The private modules behind :mod:`airflow_provider_aihubmix.http`; import from there."""
