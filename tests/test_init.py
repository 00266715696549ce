"""``import estilo``: the public API, loaded without the command line, grids, batches or extras."""

import json
import subprocess
import sys

import estilo
from imaging import subprocess_env


def _child(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=subprocess_env()).stdout


def test_import_estilo_loads_only_the_library():
    loaded = json.loads(_child(
        "import json, sys, estilo\n"
        "ours = sorted(m for m in sys.modules if m.startswith('estilo'))\n"
        "argparse = [m for m in ours if 'argparse' in vars(sys.modules[m])]\n"
        "print(json.dumps([ours, argparse, [m for m in ('gradio', 'ray') if m in sys.modules]]))"))
    ours, with_argparse, extras = loaded
    assert not [m for m in ours if m.startswith(("estilo.cli", "estilo.grids", "estilo.batch",
                                                 "estilo.web"))], ours
    assert with_argparse == [] and extras == []


def test_grids_and_batches_load_on_first_use():
    assert estilo.grid.__module__ == "estilo.grids.runner"
    assert estilo.GridResult.__module__ == "estilo.grids.spec"
    assert estilo.BatchError.__module__ == "estilo.batch.plan"
    assert set(estilo.__all__) <= set(dir(estilo)) | {"grid", "GridResult", "run_batch", "BatchError"}


def test_importing_estilo_does_not_import_the_batch_module_or_ray():
    code = ("import sys, estilo; print('estilo.batch' in sys.modules, 'ray' in sys.modules); "
            "estilo.run_batch; print('estilo.batch' in sys.modules, 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=subprocess_env())
    assert out.stdout.split() == ["False", "False", "True", "False"]
