"""Experiments: variants of one base config, trained over several seeds, compared in a report.

`spec` reads the experiment file (errors name its line), `runner` runs each variant and seed
in its own process and workdir, `results` gathers what the runs wrote, `segments` labels the
test queries, `latency` times an exported model, `charts` and `report` make the HTML page.
"""
