"""``python -m auditor``: the same CLI as the ``audit`` command."""

from auditor.cli.app import main

main()
