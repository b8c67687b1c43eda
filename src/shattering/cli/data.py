"""``shatter data list | fetch | show``: which data sets are here, download one, inspect a randomized one."""

from __future__ import annotations

import json

from ..config import RunConfig
from ..data import fetch, list_local
from ..train.data import make_data
from .common import none_or

# --------------------------------------------------------------------------------------------------
# shatter data
# --------------------------------------------------------------------------------------------------


def register(sub) -> None:
    p = sub.add_parser("data", help="list, fetch and inspect data sets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="{list,fetch,show}")
    lp = dsub.add_parser("list", help="which data sets are available here, and where")
    lp.add_argument("--json", action="store_true")
    lp.set_defaults(func=_cmd_data_list)
    fp = dsub.add_parser("fetch", help="download a data set (checksummed) into the cache or --data-dir")
    fp.add_argument("name")
    fp.add_argument("--data-dir", default=None)
    fp.set_defaults(func=_cmd_data_fetch)
    sp = dsub.add_parser("show", help="load, prepare and randomize a data set; print what it is")
    sp.add_argument("name")
    sp.add_argument("--corruption", default="true-labels")
    sp.add_argument("--p", type=float, default=None)
    sp.add_argument("--seed", type=int, default=0, help="corruption and subset seed")
    sp.add_argument("--train-size", type=int, default=None)
    sp.add_argument("--test-size", type=int, default=None)
    sp.add_argument("--crop", type=none_or(int), default=None, help="centre crop (0: none; default: the data set's)")
    sp.add_argument("--whitening", default=None)
    sp.add_argument("--exclude-true-class", action="store_true")
    sp.add_argument("--corrupt-test-labels", action="store_true")
    sp.add_argument("--pixel-unit", default="position")
    sp.add_argument("--data-dir", default=None)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_cmd_data_show)


def _cmd_data_list(args) -> int:
    rows = list_local()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {'yes' if r['available'] else 'no ':<3}  {r['location']}")
    return 0


def _cmd_data_fetch(args) -> int:
    folder = fetch(args.name, data_dir=args.data_dir)
    print(f"{args.name}: ready in {folder}")
    return 0


def _cmd_data_show(args) -> int:
    cfg = RunConfig(dataset=args.name, corruption=args.corruption, p=args.p, data_seed=args.seed,
                    train_size=args.train_size, test_size=args.test_size, crop=args.crop, whitening=args.whitening,
                    exclude_true_class=args.exclude_true_class, corrupt_test_labels=args.corrupt_test_labels,
                    pixel_unit=args.pixel_unit, data_dir=args.data_dir)
    info = make_data(cfg, progress=not args.json).describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key != "class_names":
            print(f"{key:>22}: {value}")
    return 0
