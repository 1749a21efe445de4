"""``python -m auditor``: the same CLI as the ``audit`` command."""

from auditor.cli import main

main()
