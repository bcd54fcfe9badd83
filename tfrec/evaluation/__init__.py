"""Full-catalog evaluation: ranking metrics, the protocol, baselines and result tables."""

from tfrec.evaluation import baselines, metrics, protocol, report
from tfrec.evaluation.protocol import EvalResult, evaluate

__all__ = ["EvalResult", "baselines", "evaluate", "metrics", "protocol", "report"]
