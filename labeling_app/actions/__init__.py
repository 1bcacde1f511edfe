"""Actions own transactions and side effects; views and worker tasks call them.

One module per domain noun. A precondition (a row lock, an expected status) is written in the
action's docstring. Worker tasks are queued only through ``labeling_app.queue.send_task_on_commit``.
"""
