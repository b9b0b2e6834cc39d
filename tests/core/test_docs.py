"""Generated documentation matches the code it is generated from."""

import subprocess
import sys

from support.data import ROOT


def test_config_and_events_docs_are_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_docs.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
