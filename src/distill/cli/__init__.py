"""The `distill` command: one verb per job, each a thin call into a library function.

The verbs live in `gen`, `data`, `train`, `eval` and `audit`; they are registered here, in
the order of the job (teacher -> curate -> train -> report), which is the order `distill
--help` shows.
"""

from distill.cli import audit, data, eval, gen, train
from distill.cli.app import app, teacher_options

app.command()(gen.gen)
app.command()(gen.score)
app.command(help=data.curate_help())(data.curate)
app.command()(data.pack)
app.command()(data.export)
app.command()(train.train)
app.command(name="eval")(eval.eval_)
app.command()(data.report)
app.command()(audit.audit)
app.command()(audit.verify)
app.command()(audit.sql)
app.command()(audit.card)
app.command()(data.demo)

__all__ = ["app", "teacher_options"]
