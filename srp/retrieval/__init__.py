"""The retrieval core every vendor command shares: vendor.py is the interface a vendor
implements, job.py takes a command's options to its outcome, run.py is the retrieval itself.

The defaults of the guardrails live here, light to import, for the command line and the core.
"""

DEFAULT_MAX_SESSIONS = 500
DEFAULT_MAX_BYTES = "2G"
DEFAULT_CONCURRENCY = 8
DEFAULT_MIN_FREE = "1G"   # free disk below which an automatic action refuses to start
