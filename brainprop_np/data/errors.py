"""The one error type of the data layer."""


class DataError(RuntimeError):
    """A dataset is missing, corrupt or cannot be downloaded.

    The message is one line and names the file (or folder) and what is wrong.
    """

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))
