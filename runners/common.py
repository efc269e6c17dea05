"""What several runners do the same way: load the role's model and log it."""

from __future__ import annotations

import torch

from canon import CANON
from critspec.models.device import resolve_dtype
from critspec.models.from_config import load_entry
from critspec.models.loading import LoadedModel
from critspec.orchestrate import PhaseContext


def load_role_model(ctx: PhaseContext, role: str) -> LoadedModel:
    device = torch.device(ctx.inv.device)
    dtype = resolve_dtype(ctx.inv.dtype, device)
    loaded = load_entry(ctx.config.model_entry(role), device, dtype)
    ctx.run.log.event(
        CANON.ENUM.LOG_EVENT.MODEL_LOADED, {"model_role": role, **loaded.info.to_record()}
    )
    return loaded
