"""``umbau new``: a timestamped, slugged revision file from umbau's template."""

from __future__ import annotations

from umbau import alembic_bridge as bridge
from umbau.commands._common import NewRevisionResult, database, open_project
from umbau.errors import UsageError
from umbau.settings import Settings


def new(settings: Settings, message: str, *, autogenerate: bool = False,
        head: str = "head", rev_id: str | None = None) -> NewRevisionResult:
    """Write ``YYYYMMDD_HHMM_<slug>.py``; with ``autogenerate`` compare models and database."""
    if not message.strip():
        raise UsageError("a revision needs a message: umbau new \"add invoices.due_date\"")
    project = open_project(settings)
    if head == "head" and len(project.heads()) > 1:
        raise bridge.multiple_heads(project.heads())
    if autogenerate:
        with database(settings) as conn:
            script = bridge.generate_revision(project, message, autogenerate=True,
                                              connection=conn, head=head, rev_id=rev_id)
    else:
        script = bridge.generate_revision(project, message, autogenerate=False,
                                          connection=None, head=head, rev_id=rev_id)
    return NewRevisionResult(script.revision, script.path, message,
                             bridge.down_revisions_of(script))
