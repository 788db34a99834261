"""`distill report`: what happened at every step, as a table, one static HTML page and JSON."""

from distill.report.collect import collect_report
from distill.report.render import print_report, write_report

__all__ = ["collect_report", "print_report", "write_report"]
