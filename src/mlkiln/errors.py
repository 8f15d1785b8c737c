"""The one error class mlkiln raises for problems a user can act on."""


class MlkilnError(Exception):
    """A problem with the user's input, data or bundle.

    The message is one line that says what is wrong and what to do; the CLI
    prints it as is and exits with status 2.
    """
