"""Snakemake script of rules `settings` and `search_settings`: write one run's settings file (YAML).

A configured experiment's resolved settings arrive as params (so that changing them reruns this job and
what depends on it); the searched setting is read from the search's best.json (the rule's input).
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.getcwd())  # the workflow runs from the repository root: use this checkout's package
from pipeline.settings import write_settings  # noqa: E402

job = snakemake  # noqa: F821 - injected by Snakemake's script directive
if job.input:
    best = json.loads(Path(job.input[0]).read_text())
    settings = best["settings"]
    note = f"setting chosen by the search (trial {best['trial']}): {json.dumps(best['overrides'])}"
else:
    settings = job.params.settings
    note = f"settings of experiment {job.wildcards.experiment}: {json.dumps(settings)}"
write_settings(job.output[0], settings)
Path(job.log[0]).write_text(note + "\n")
