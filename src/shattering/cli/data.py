"""``shatter data list | fetch | show``: which data sets are here, download one, inspect a randomized one
(Section 2.1's randomizations, as ``shatter run`` would train on them)."""

from __future__ import annotations

from ..data import fetch, list_local
from ..files import json_text
from ..train.data import make_data
from .common import add_config_options, config_from_args, json_flag

# --------------------------------------------------------------------------------------------------
# shatter data
# --------------------------------------------------------------------------------------------------


def register(sub) -> None:
    p = sub.add_parser("data", help="list, fetch and inspect data sets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="{list,fetch,show}")
    lp = dsub.add_parser("list", help="which data sets are available here, and where")
    json_flag(lp, "the list")
    lp.set_defaults(func=_cmd_data_list)
    fp = dsub.add_parser("fetch", help="download a data set (checksummed) into the cache or --data-dir")
    add_config_options(fp, only=("dataset", "data_dir"), required=("dataset",),
                       notes={"data_dir": "default: the cache, where every command looks; with DIR, pass "
                                          "--data-dir DIR to them too"})
    fp.set_defaults(func=_cmd_data_fetch)
    sp = dsub.add_parser("show", help="load, prepare and randomize a data set; print what it is",
                         description="Load, prepare and randomize a data set exactly as `shatter run` with the same "
                                     "options would, and print what it is: sizes, shape, classes, the label noise "
                                     "and the fingerprint of the data the run trains on.")
    add_config_options(sp, sections=("data",), required=("dataset",))
    add_config_options(sp, only=("seed",), notes={"seed": "accepted as `shatter run` takes it; the data do not "
                                                           "depend on it: --data-seed draws the subsets and the "
                                                           "corruption"})
    json_flag(sp, "the description")
    sp.set_defaults(func=_cmd_data_show)


def _cmd_data_list(args) -> int:
    rows = list_local()
    if args.json:
        print(json_text(rows, sort_keys=False), end="")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {'yes' if r['available'] else 'no ':<3}  {r['location']}")
    return 0


def _cmd_data_fetch(args) -> int:
    folder = fetch(args.dataset, data_dir=getattr(args, "data_dir", None))
    print(f"{args.dataset}: ready in {folder}")
    return 0


def _cmd_data_show(args) -> int:
    info = make_data(config_from_args(args), progress=not args.json).describe()
    if args.json:
        print(json_text(info, sort_keys=False), end="")
        return 0
    for key, value in info.items():
        if key not in ("class_names", "warnings", "missing_classes"):
            print(f"{key:>22}: {value}")
    for warning in info["warnings"]:
        print(f"{'warning':>22}: {warning}")
    return 0
