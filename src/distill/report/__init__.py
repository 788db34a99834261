"""`distill report`: what happened at every step, as tables on the terminal, one
self-contained HTML page (charts and a browser of sampled rows) and JSON."""

from distill.report.collect import collect_report
from distill.report.render import (
    check_report_path,
    default_report_path,
    print_report,
    write_report,
)
from distill.report.section import PageOptions

__all__ = [
    "PageOptions",
    "check_report_path",
    "collect_report",
    "default_report_path",
    "print_report",
    "write_report",
]
