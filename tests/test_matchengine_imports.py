"""The pure engine imports no I/O library (the boundary matchengine/README.md states)."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = {"flask", "lmdb", "requests", "web3", "waitress", "socket"}


def test_pure_engine_modules_import_no_io_libraries():
    code = ("import json, sys\n"
            "import matchengine.engine, matchengine.methods, matchengine.config\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.check_output([sys.executable, "-c", code], text=True)
    loaded = {name.split(".")[0] for name in json.loads(out)}
    assert not loaded & (FORBIDDEN - {"socket"}), loaded & FORBIDDEN
