"""CI: import every module of satgate_monai and data_prep in the environment at hand (one with only the `all` extra
installed), so a module the product imports at run time that no extra of `all` installs fails here.

    python .ci/import_modules.py          # prints each failure and exits 1 on any

Modules that run in an environment of their own are left out, named in SEPARATE_ENVIRONMENTS (MONAI Label's app,
MONAI Deploy's operators, the network and trainers nnU-Net imports: .ci/monailabel_env.sh, .ci/deploy_env.sh,
.ci/nnunet_env.sh; the `nnunet` extra installs what they need).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback

SEPARATE_ENVIRONMENTS = ("satgate_monai.label.app", "satgate_monai.deploy", "satgate_monai.nnunet.network",
                         "satgate_monai.nnunet.trainers")


def modules() -> list[str]:
    names = []
    for package in ("satgate_monai", "data_prep"):
        module = importlib.import_module(package)
        names.append(package)
        names += [m.name for m in pkgutil.walk_packages(module.__path__, prefix=f"{package}.")]
    return [n for n in names if not n.startswith(SEPARATE_ENVIRONMENTS) and not n.endswith(".__main__")]


def main() -> int:
    failed = []
    names = modules()
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # report every failure, not only the first
            failed.append(name)
            print(f"FAILED {name}: {type(e).__name__}: {e}", file=sys.stderr)
            traceback.print_exc(limit=-2)
    print(f"imported {len(names) - len(failed)}/{len(names)} modules of satgate_monai and data_prep")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
