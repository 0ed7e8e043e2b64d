"""Layer-name -> fine-tuning group rules shared by the families."""
from __future__ import annotations

import re

# Head layers are named alike across families (keras.applications' names plus our global poolings).
_HEAD = re.compile(r"^(avg_pool|max_pool|top_dropout|predictions|flatten|fc1|fc2|[a-z]+_pool)$")


def is_head(name: str) -> bool:
    return bool(_HEAD.match(name))
