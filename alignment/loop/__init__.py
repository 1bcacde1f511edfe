"""One RLHF iteration through the real deployment, measured: ``python -m alignment.loop --out DIR``.

Simulated annotators (alignment.simulate, hidden preferences over the behaviour metrics) label a
campaign of two variants of the default agent through the site over HTTP; an engineer's
snapshot, reward-model job and PPO job run on the worker's ``jobs`` queue; the PPO policy is
judged against its parent by fresh annotators, and the site's statistics say whether it won.
Nothing here imports the site or the workers: ``manage.py serve`` runs as a child process and
everything goes through pages, the REST API and management commands (``site``). ``run`` has the
stages, ``annotators`` the annotators, ``engineer`` the engineer and the lead, ``state`` the state
file a killed run continues from, ``report`` the Markdown report and plots.
"""
