"""nbval settings for the study's notebooks.

stderr carries progress bars and warnings, whose text varies from run to run; HTML and
JavaScript outputs carry audio players and widget state. The numbers that matter are
printed to stdout or returned as text and are compared (see nbval_sanitize.cfg for the
few volatile patterns that are masked).
"""


def pytest_collectstart(collector):
    if getattr(collector, "fspath", None) is not None and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("text/html", "application/javascript", "stderr")
