"""Dynamic evaluation of the CPU-recipe `gpt` on the six held-out plays, static vs dynamic.

The model is the `shakespeare_gpt` preset (the CPU recipe, 4 x 128, block 64; trained on
the 32 training plays only). Each text is scored in consecutive 64-character windows; the
dynamic score takes one step on each window after scoring it (`kse.adapt(...,
dynamic=True)`, `keras_selfevo.zoo.dynamic_evaluation`).

Part "tune": the step's settings are chosen on the validation split (the last part of each
training play, never trained on): SGD and Adam at a few rates, with and without a decay back
to the start, on the --tune-plays longest validation parts. Part "test": the best SGD and the
best Adam setting of the tuning (or --settings), on every held-out play, each play's own
nats/char static and dynamic, and the wall time of both passes.

    python benchmarks/dynamic_evaluation.py [--quick] [--parts tune,test]
        [--settings sgd:0.003:0,adam:3e-5:0] [--tune-plays 8]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import parse_args, report  # noqa: E402

GRID = ("sgd:0.001:0", "sgd:0.003:0", "sgd:0.01:0", "sgd:0.01:0.001",
        "adam:1e-5:0", "adam:3e-5:0", "adam:1e-4:0", "adam:1e-4:0.001")


def _setting(spec: str) -> dict:
    optimizer, rate, decay = spec.split(":")
    return {"optimizer": optimizer, "learning_rate": float(rate), "decay": float(decay)}


def _score(model, texts: dict, spec: str, part: str) -> list[dict]:
    from keras_selfevo.zoo.dynamic_evaluation import dynamic_evaluation

    rows = []
    for name, ids in texts.items():
        result = dynamic_evaluation(model, ids, 64, **_setting(spec))
        rows.append({"part": part, "setting": spec, "text": name, "chars": result.chars,
                     "static": result.static, "dynamic": result.dynamic,
                     "gain": result.gain, "static_s": result.static_seconds,
                     "dynamic_s": result.dynamic_seconds})
        print(rows[-1], flush=True)
    chars = sum(row["chars"] for row in rows)
    static = sum(row["static"] * row["chars"] for row in rows) / chars
    dynamic = sum(row["dynamic"] * row["chars"] for row in rows) / chars
    rows.append({"part": part, "setting": spec, "text": "all (per character)", "chars": chars,
                 "static": static, "dynamic": dynamic, "gain": (static - dynamic) / static,
                 "static_s": sum(row["static_s"] for row in rows),
                 "dynamic_s": sum(row["dynamic_s"] for row in rows)})
    print(rows[-1], flush=True)
    return rows


def main() -> None:
    args = parse_args(__doc__, options={
        "--parts": "tune,test (default: both)",
        "--settings": "optimizer:rate:decay,... for the test part (default: the tuning's best)",
        "--tune-plays": "how many validation parts tune (default: 8; --quick: 2)"})
    import keras_selfevo as kse
    from keras_selfevo.data import language_data

    parts = (args.parts or "tune,test").split(",")
    model = kse.zoo.from_preset("shakespeare_gpt")
    rows = []
    settings = args.settings.split(",") if args.settings else None
    if "tune" in parts:
        validation = language_data.shakespeare_streams("validation")
        count = int(args.tune_plays or (2 if args.quick else 8))
        longest = sorted(validation, key=lambda name: -len(validation[name]))[:count]
        texts = {name: validation[name] for name in longest}
        summaries = []
        for spec in GRID:
            scored = _score(model, texts, spec, "tune")
            rows += scored
            summaries.append(scored[-1])
        if settings is None:
            settings = [min((row for row in summaries if row["setting"].startswith(kind)),
                            key=lambda row: row["dynamic"])["setting"]
                        for kind in ("sgd", "adam")]
    if "test" in parts:
        held_out = language_data.shakespeare_streams("test")
        if args.quick:
            held_out = {name: ids[:20_000] for name, ids in list(held_out.items())[:2]}
        for spec in settings or ["sgd:0.003:0", "adam:3e-5:0"]:
            rows += _score(model, held_out, spec, "test")
    report("dynamic_evaluation", rows)


if __name__ == "__main__":
    main()
