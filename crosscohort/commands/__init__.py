"""One module per ``crosscohort`` subcommand (see :mod:`crosscohort.cli`)."""
