"""Experiments: variants of one base config, trained over several seeds, compared in a report.

`spec` reads the experiment file (errors name its line), `runner` runs each variant and seed
in its own process and workdir, `results` gathers what the runs wrote, `segments` labels the
test queries, `charts` and `report` make the HTML page. Serving each variant (export, server,
timed requests) is the experiment pipeline's part: it joins this package with `serving`.
"""
