"""Serving a package on a real Triton Inference Server through PyTriton (`pip install
'model-navigator[serve]'`), and measuring it under load against the in-process figures.

    with nav.serve(package) as served:
        served.infer({"x": batch})
    report = nav.loadtest(package, concurrency=(1, 2, 4))

Importing this package imports neither PyTriton nor a framework; serve() and loadtest() do.
"""

from model_navigator.serving.loadtest import LoadtestReport, loadtest
from model_navigator.serving.plan import ServePlan, plan_serving
from model_navigator.serving.server import ServedModel, serve

__all__ = ["LoadtestReport", "ServePlan", "ServedModel", "loadtest", "plan_serving", "serve"]
