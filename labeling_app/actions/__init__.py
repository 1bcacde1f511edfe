"""Actions: every change of data the site makes, one module per noun.

An action owns its transaction and its side effects (worker tasks are queued only through
``labeling_app.queue.send_task_on_commit``). When a precondition fails it raises ``Refused``
with a message written for the person who asked; views turn it into a 4xx response.
"""


class Refused(Exception):
    """A request the current state of the data does not allow (by default a 409 Conflict)."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.message = message
        self.status = status
