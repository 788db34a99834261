"""Exports: a dataset's rows in the formats other trainers read (`distill export`)."""

from distill.export.axolotl_kd import AXOLOTL_KD_SCHEMA, axolotl_kd_rows
from distill.export.chat import CHAT_SCHEMA, chat_rows
from distill.export.run import FORMATS, ExportConfig, ExportResult, export_dataset
from distill.export.sinks import lineage_path

__all__ = [
    "AXOLOTL_KD_SCHEMA",
    "CHAT_SCHEMA",
    "FORMATS",
    "ExportConfig",
    "ExportResult",
    "axolotl_kd_rows",
    "chat_rows",
    "export_dataset",
    "lineage_path",
]
