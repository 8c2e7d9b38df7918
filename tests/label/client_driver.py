"""Drive a MONAI Label server with MONAI Label's own client (``monailabel.client.MONAILabelClient``, as 3D Slicer does).

Runs in the MONAI Label environment (the client lives there)::

    <monailabel python> -m tests.label.client_driver URL OUT_DIR

It reads one JSON request per line on stdin, ``{"method": "infer", "args": [...], "kwargs": {...}}``, calls that
client method and answers one JSON line on stdout: ``{"ok": true, "result": ...}`` or ``{"ok": false, "status": 404,
"message": "..."}`` (the HTTP status parsed from the client's exception). Files the client returns (inferred labels)
are moved into OUT_DIR under a new unique name, and their paths returned. See :class:`tests.label.client.LabelClient`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        return str(value)


def main() -> int:
    from monailabel.client import MONAILabelClient
    from monailabel.client.client import MONAILabelClientException

    url, out_dir = sys.argv[1], Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "client-tmp"
    tmp.mkdir(exist_ok=True)
    client = MONAILabelClient(url, tmpdir=str(tmp))
    count = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            result = getattr(client, request["method"])(*request.get("args", []), **request.get("kwargs", {}))
            if request["method"] == "infer":
                file, params = result
                if file:
                    count += 1
                    kept = out_dir / f"infer_{count}_{os.path.basename(file)}"
                    shutil.move(file, kept)
                    file = str(kept)
                result = {"file": file, "params": params}
            answer = {"ok": True, "result": _jsonable(result)}
        except MONAILabelClientException as e:
            match = re.match(r"Status: (\d+); Response: (.*)", str(e.msg), re.S)
            status = e.status_code or (int(match.group(1)) if match else None)
            answer = {"ok": False, "status": status, "message": match.group(2) if match else str(e.msg)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
