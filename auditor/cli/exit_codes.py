"""The process's exit codes: what a shell or a CI step reads from an `audit` command."""

EXIT_OK, EXIT_GATE_FAILED, EXIT_USAGE = 0, 1, 2
# 128 + SIGINT, what shells report for a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130
# A bug in auditor (sysexits' EX_SOFTWARE): never 1, which a CI job reads as "the gate failed".
EXIT_INTERNAL = 70
