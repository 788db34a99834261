"""Keep upstream chatter out of distill's output: loading bars, advisory logs, deprecations.

transformers, datasets, huggingface_hub and torch print loading bars ("Loading weights:
100%|...") and warnings that break into distill's own progress and tables, and tell a user
nothing they can act on. By default the CLI turns the bars off, lets those libraries log
errors only, and drops Python warnings raised outside distill (distill's own still show);
`-v/--verbose` leaves everything as the libraries set it. This runs before any of them is
imported (the commands import them lazily), since the bars and the log levels are
switched by environment variables read at import. A variable the user set is kept.
"""

from __future__ import annotations

import os
import sys
import warnings

QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' bars follow huggingface_hub's switch
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",  # its fork warning, printed once per process
}


def quiet_upstream() -> None:
    """Bars off, upstream logs at error level, warnings from outside distill dropped."""
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore", module=r"^(?!distill)")
    _quiet_imported()


def _quiet_imported() -> None:
    """The same switches on libraries imported already (their environment was read)."""
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    if "transformers" in sys.modules:
        logging = sys.modules["transformers"].utils.logging
        logging.set_verbosity_error()
        logging.disable_progress_bar()
    if "datasets" in sys.modules:
        logging = sys.modules["datasets"].utils.logging
        logging.set_verbosity_error()
        logging.disable_progress_bar()
