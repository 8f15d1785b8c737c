"""mlkiln's errors, by kind, so a caller can catch what it can handle.

Every message is one line that says what is wrong and what to do; the CLI
prints it as is and exits with status 2.
"""

import importlib


class MlkilnError(Exception):
    """Base class: a problem with the user's input, data or bundle."""


class InputError(MlkilnError, ValueError):
    """Bad data or a bad argument: a missing column, an unreadable value, ``folds=1``."""


class BundleError(MlkilnError):
    """A bundle that cannot be trusted or read: a hash mismatch, an untrusted type, a newer card version."""


class ArgumentError(InputError):
    """A bad argument to a library call, named as the library names it: ``folds=1: must be at least 2``.

    ``param``, ``value`` and ``why`` let the CLI say the same in its own words (``--folds 1: ...``).
    """

    def __init__(self, param: str, value, why: str):
        self.param, self.value, self.why = param, value, why
        super().__init__(f"{param}={value!r}: {why}")


def require(module: str, extra: str, what: str):
    """Import an optional dependency, or say which extra installs it: ``"<what> needs ... pip install 'mlkiln[extra]'"``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InputError(f"{what} needs the {extra} extra: pip install 'mlkiln[{extra}]'") from exc
