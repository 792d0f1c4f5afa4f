"""``python -m web.watch JOB_ID``: where to watch a job started any way (``celery call``, say):
prints ``/ws/jobs/<id>?watch=<token>``, signed with ``TASKCAST_JOB_SECRET``."""

from __future__ import annotations

import sys
from urllib.parse import quote

from showcase.settings import Settings
from taskcast.jobs import watch_token


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].strip():
        raise SystemExit("usage: python -m web.watch JOB_ID")
    settings = Settings.load()
    if settings.job_secret is None:
        raise SystemExit("taskcast: TASKCAST_JOB_SECRET is not set: jobs cannot be watched")
    job_id = args[0].strip()
    token = watch_token(settings.job_secret.get_secret_value().encode(), job_id)
    print(f"/ws/jobs/{quote(job_id, safe='')}?watch={token}")


if __name__ == "__main__":
    main()
