"""The comparison task of bench/distribution.py, loaded into its workers with ``--include bench.bench_tasks``."""

from celery import shared_task


@shared_task(name="bench.noop")
def noop() -> None:
    """Nothing: what the broker, the worker and the result backend cost per task on their own."""
