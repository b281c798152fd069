"""Run Celery beat's schedule in this process, each task where it is called: the embedded default's beat.

Without a broker (no REDIS_URL) tasks run in the process that calls them, and no beat sends the periodic ones, so
failed pushes would never be retried, renewals never opened, held shares never released. ``./zhiku demo`` runs this
beside the web server. With a broker, run ``celery -A marketplace beat`` and a worker instead.
"""

import logging
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the beat schedule's tasks in this process as they fall due (the embedded default has no beat)."

    def add_arguments(self, parser):
        parser.add_argument("--run", nargs="+", metavar="ENTRY",
                            help="Run these schedule entries now, once each, and stop (e.g. distribution-dispatch).")
        parser.add_argument("--interval", type=float, default=20.0, help="Seconds between looks at the schedule.")

    def handle(self, *args, run=None, interval=20.0, **options):
        from marketplace.celery import app

        app.loader.import_default_modules()  # the apps' tasks modules, as a worker imports them when it starts
        schedule = app.conf.beat_schedule
        if run:
            unknown = sorted(set(run) - set(schedule))
            if unknown:
                raise CommandError(f"Not in the schedule: {', '.join(unknown)}. It has: {', '.join(sorted(schedule))}.")
            for name in run:
                self._run(app, name, schedule[name])
            return
        # As beat does on its first start: every entry counts from now, so nothing runs merely for having started.
        last_run = dict.fromkeys(schedule, timezone.now())
        self.stdout.write(f"Running {len(schedule)} scheduled tasks in this process as they fall due (Ctrl-C stops).")
        while True:
            for name, entry in schedule.items():
                due, _next = entry["schedule"].is_due(last_run[name])
                if due:
                    last_run[name] = timezone.now()
                    self._run(app, name, entry)
            time.sleep(interval)

    def _run(self, app, name: str, entry: dict) -> None:
        """One entry's task, in this process; its failure is logged and the schedule goes on, as beat's would."""
        try:  # in-process tasks raise their errors (CELERY_TASK_EAGER_PROPAGATES)
            result = app.tasks[entry["task"]].apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}))
        except Exception:
            logger.exception("scheduled task %s (%s) failed", name, entry["task"])
            return
        if result.failed():
            logger.error("scheduled task %s (%s) failed: %r", name, entry["task"], result.result)
        else:
            logger.info("scheduled task %s (%s) ran: %r", name, entry["task"], result.result)
