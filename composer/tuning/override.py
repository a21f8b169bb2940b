"""A candidate as Triton takes it: the config override for the repository load API, and config.pbtxt.

Triton's ``POST /v2/repository/models/<m>/load`` with ``parameters.config`` (tritonclient's
``load_model(name, config=JSON)``) loads the model with that configuration instead of its
config.pbtxt: no restart, no copied files. The override is the whole configuration the server
served for the baseline with the candidate's three fields set, so everything else stays as Triton
completed it. ``best/config.pbtxt`` starts from the user's own file (its settings, not Triton's
defaults), with the same three fields set.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from composer.core.modelconfig import new_model_config
from composer.tuning.space import Candidate


def configured(config: Mapping[str, Any], candidate: Candidate) -> dict[str, Any]:
    """``config`` (get_model_config's JSON form) with the candidate's instances, max_batch_size and
    dynamic batching; the count applies to every instance group, the batcher keeps its settings."""
    out = copy.deepcopy(dict(config))
    groups = out.get("instance_group") or [{}]
    out["instance_group"] = [{**group, "count": candidate.instances} for group in groups]
    if int(out.get("max_batch_size", 0) or 0) > 0 or candidate.max_batch_size > 0:
        out["max_batch_size"] = candidate.max_batch_size
    if candidate.dynamic_batching:
        out["dynamic_batching"] = _batcher(out.get("dynamic_batching") or {}, candidate.max_batch_size)
    else:
        out.pop("dynamic_batching", None)
    return out


def _batcher(batcher: Mapping[str, Any], max_batch_size: int) -> dict[str, Any]:
    """The batcher's settings, less preferred batch sizes above the new max_batch_size (Triton fills
    in ``[max_batch_size]`` when it completes a config, and refuses a preferred size above it)."""
    out = dict(batcher)
    preferred = [int(size) for size in out.get("preferred_batch_size") or [] if int(size) <= max_batch_size]
    if preferred:
        out["preferred_batch_size"] = preferred
    else:
        out.pop("preferred_batch_size", None)
    return out


def override_json(served: Mapping[str, Any], candidate: Candidate) -> str:
    """The ``config`` parameter of the load request for ``candidate``."""
    return json.dumps(configured(served, candidate), sort_keys=True)


def config_pbtxt(base: Mapping[str, Any], candidate: Candidate) -> str:
    """config.pbtxt text for ``candidate``, from ``base`` (the user's configuration as a dict)."""
    from google.protobuf import json_format, text_format

    message = json_format.ParseDict(configured(base, candidate), new_model_config())
    return str(text_format.MessageToString(message))


def disk_config(text: str) -> dict[str, Any]:
    """The fields a config.pbtxt sets, as a dict (without the defaults Triton would add)."""
    from google.protobuf import json_format, text_format

    message = text_format.Parse(text, new_model_config())
    return dict(json_format.MessageToDict(message, preserving_proto_field_name=True))
