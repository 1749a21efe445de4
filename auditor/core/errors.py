"""One exception family; the CLI turns it into exit code 2 with a one-line message."""


class AuditorError(Exception):
    """A problem with the user's input or configuration (exit code 2), never a bug."""


class ConfigError(AuditorError):
    """The configuration file or a command-line override is invalid."""


class DatasetError(AuditorError):
    """The dataset cannot be scanned as given (missing folder, bad manifest, no images)."""


class EncoderUnavailable(AuditorError):
    """An encoder cannot be built here, e.g. pretrained weights are not on this machine."""


class OutputError(AuditorError):
    """An output (results folder, report file, embedding cache) cannot be written where asked."""
