"""Every error traceon-edge raises on purpose, and the exit codes they end a command with.

One root, a base per role (as gpiozero's exc.py has a base per area); leaf errors also inherit the
builtin they resemble, so callers that only know Python's own exceptions still catch them. Every
message is written for the person who reads it: a technician at a doorway, a contact tracer.
"""

EX_OK = 0
EX_FAILED = 1  # the command ran and failed: its message says why
EX_USAGE = 2  # argparse's own code for a command line it cannot read
EX_CONFIG = 78  # sysexits.h: a configuration (file or options) that cannot be used
EX_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT


class TraceonError(Exception):
    """Root of every error traceon-edge raises on purpose."""

    exit_code = EX_FAILED


class ConfigError(TraceonError, ValueError):
    """A configuration that cannot be used; the message lists every problem, one per line."""

    exit_code = EX_CONFIG


# --- the core both roles share ---
class ModelError(TraceonError, RuntimeError):
    """A model file is missing, damaged or does not match its manifest."""


class PrivateFileError(TraceonError, ValueError):
    """A secret file that is missing, or that others could read or replace."""


class EventError(TraceonError, ValueError):
    """An event that does not match the schema (a bug: it is never stored or sent)."""


class FaceHashError(TraceonError, ValueError):
    """A FaceHash that cannot be read, or two that cannot be compared."""


class KeyFileError(TraceonError, ValueError):
    """A key file that is missing, too readable or malformed."""


class SpanError(TraceonError, ValueError):
    """A time span that is not a number and s, m, h or d."""


# --- the unit ---
class UnitError(TraceonError):
    """Base of the errors of the checkpoint unit."""


class FrameError(UnitError, ValueError):
    """A frame or image the vision pipeline cannot use."""


class RuntimeMissingError(UnitError, ImportError):
    """No TensorFlow Lite runtime could be imported."""


class SourceError(UnitError, OSError):
    """A camera that cannot be opened or read."""


class OutboxError(UnitError, OSError):
    """The outbox file cannot be opened or written, even after moving a damaged one aside."""


# --- the contact tracer ---
class TracerError(TraceonError):
    """Base of the errors of the contact tracer's side."""


class Refused(TracerError, ValueError):
    """A message that is not stored. Its text is safe to log: no payload in it."""


class StoreError(TracerError, ValueError):
    """A store that cannot be opened or used as asked."""


class OperatingError(TracerError, ValueError):
    """A trace whose operating point cannot be chosen (no calibration for it)."""


class TraceError(TracerError, ValueError):
    """A trace that cannot be run as asked."""


# --- the operators' console ---
class ConsoleError(TraceonError):
    """Base of the errors of the operators' console."""


class ConsoleDbError(ConsoleError, RuntimeError):
    """The console's database cannot be opened or used (down, unreadable, or missing a right)."""


class AccountError(ConsoleError, ValueError):
    """A user name, role, site list or password that cannot be used, or a user that is not there."""


class AuditError(ConsoleError, ValueError):
    """An audit key that is missing, too readable or malformed, or an audit entry that cannot be written."""


class NoticeError(ConsoleError, ValueError):
    """An exposure notice that cannot be published or withdrawn as asked."""


# --- the field tools ---
class FieldError(TraceonError):
    """Base of the errors of the field tools."""


class DeployError(FieldError, ValueError):
    """A deploy that cannot start: nothing was sent to any unit."""
