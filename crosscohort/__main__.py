"""``python -m crosscohort`` is the ``crosscohort`` command."""

from crosscohort.cli import main

raise SystemExit(main())
