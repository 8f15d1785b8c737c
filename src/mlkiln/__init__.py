"""mlkiln: a table in, a tuned, evaluated, deployable scikit-learn model out.

    run = mlkiln.train("data.csv", target="price")
    run.leaderboard; run.metrics["test"]; run.save("model/")
    model = mlkiln.load("model/")       # verified before anything is unpickled
    model.predict(frame)
"""

__version__ = "0.1.0"

from .errors import MlkilnError  # noqa: E402
from .examples import EXAMPLES, load_example  # noqa: E402
from .predict import Model, load  # noqa: E402
from .workflow import Run, train  # noqa: E402

__all__ = ["EXAMPLES", "MlkilnError", "Model", "Run", "__version__", "load", "load_example", "train"]
