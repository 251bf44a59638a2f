"""``simclr study``: the paper's ablations run on your own data, one ordinary run folder per variant.

- ``variants``: each study (head, layer, composition, color-strength, temperature,
  batch-epochs, width) as named config deltas;
- ``runner``: runs (or resumes, or reuses) every variant and evaluates it;
- ``report``: means over seeds, a verdict per finding of the paper, ``study.md``,
  ``study.json`` and the figures (``plots``).
"""

from simclr.study.variants import STUDIES, Variant, expand, expand_all, parse_studies

__all__ = ["STUDIES", "Variant", "expand", "expand_all", "parse_studies"]
