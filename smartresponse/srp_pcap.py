"""srp-pcap inside a LogRhythm SmartResponse package: the script every action runs.

The Alarming and Response Manager starts `python.exe srp_pcap.py COMMAND --option=value ...`
in the package's Plugin\\bin folder. The srp package lies beside this file and its
dependencies in lib\\, so the Event Manager needs only Python: no pip, no internet, no PATH.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# First on the path, so the bundled versions win over anything installed on the host;
# and `python -I` would not even add this script's own folder.
sys.path[:0] = [str(HERE), str(HERE / "lib")]

# The ARM reads the output through a pipe in the ANSI code page: a character that page
# lacks (an attacker's host name) is escaped instead of ending the run.
for stream in (sys.stdout, sys.stderr):
    if stream is not None:
        stream.reconfigure(errors="backslashreplace")

from srp.cli import main  # noqa: E402  (needs the path above)

main(prog_name="srp-pcap")
