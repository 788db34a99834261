"""The `distill` command: one verb per job, each a thin call into a library function.

The verbs live in `gen`, `data`, `train`, `eval` and `audit`; they are registered here, in
the order of the job (teacher -> curate -> train -> report), which is the order `distill
--help` shows.
"""

from distill.cli import audit, data, eval, gen, train
from distill.cli.app import app, teacher_options
from distill.cli.metavars import ReadableCommand

verb = app.command  # every verb's help with readable metavars (PATH, TEXT, INTEGER)
verb(cls=ReadableCommand)(gen.gen)
verb(cls=ReadableCommand)(gen.score)
verb(cls=ReadableCommand, help=data.curate_help())(data.curate)
verb(cls=ReadableCommand)(data.pack)
verb(cls=ReadableCommand)(data.export)
verb(cls=ReadableCommand)(train.train)
verb(cls=ReadableCommand, name="eval")(eval.eval_)
verb(cls=ReadableCommand)(data.report)
verb(cls=ReadableCommand)(audit.audit)
verb(cls=ReadableCommand)(audit.verify)
verb(cls=ReadableCommand)(audit.sql)
verb(cls=ReadableCommand)(audit.card)
verb(cls=ReadableCommand)(data.demo)

__all__ = ["app", "teacher_options"]
