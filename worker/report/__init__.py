"""What people read: the work log (`worklog.py`), Markdown for untrusted text
(`markdown.py`), the PR body (`prbody.py`) and the texts of a task's outcome: titles, labels,
status lines (`outcome.py`)."""
